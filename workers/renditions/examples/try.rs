use offloader_renditions::*;
use std::time::Instant;
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let margin: f32 = std::env::var("MARGIN").ok().map(|s| s.parse().unwrap()).unwrap_or(2.0);
    let all: bool = std::env::var("ALL8").map(|s| s == "1").unwrap_or(true);
    let filter = match std::env::var("FILTER").as_deref() { Ok("cr") => Filter::CatmullRom, _ => Filter::Lanczos3 };
    let tuning = Tuning { dct_margin: margin, dct_all_eighths: all, filter, ..Tuning::default() };
    let specs = RenditionSpec::aem_defaults();
    let limits = Limits::default();
    let files: Vec<Vec<u8>> = args.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let t = Instant::now();
    for (p, f) in args.iter().zip(&files) {
        let t0 = Instant::now();
        process_with(f, &specs, &limits, &tuning).unwrap();
        if std::env::var("T").is_ok() { println!("{:7.1} ms {p}", t0.elapsed().as_secs_f64() * 1e3); }
    }
    let el = t.elapsed().as_secs_f64();
    if std::env::var("NOQ").is_ok() { println!("{:.2} img/s", files.len() as f64 / el); return; }
    let mut minp = f64::INFINITY;
    for (p, f) in args.iter().zip(&files) {
        let (_m, imgs) = render_with(f, &specs[3..], &limits, &tuning).unwrap();
        let r = quality::reference(f, imgs[0].width, imgs[0].height, &limits).unwrap();
        let q = quality::psnr(&imgs[0], &r);
        if q < minp { minp = q; }
        if std::env::var("V").is_ok() { println!("{p} {q:.2}"); }
    }
    println!("{} images {:.2} img/s  min psnr {:.2}", files.len(), files.len() as f64 / el, minp);
}
