# Stand-in for the public `rabbitmq` image where no image registry can be reached: Debian's
# own rabbitmq-server package on the debootstrapped base (scripts/containers makes it).
ARG BASE_IMAGE=offloader-base:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends rabbitmq-server \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
COPY rabbitmq-entrypoint /usr/local/bin/rabbitmq-entrypoint
EXPOSE 5672
ENTRYPOINT ["/usr/local/bin/rabbitmq-entrypoint"]
