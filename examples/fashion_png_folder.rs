//! Writes Fashion-MNIST's 60,000 training images as a PNG image folder (`<out>/<class>/<i>.png`,
//! 28x28 grey), a real folder to measure `image-folder` and `data.stream` on. Run by hand once:
//!
//! ```text
//! cargo run --release --no-default-features --example fashion_png_folder -- /tmp/fashion-png
//! ```

use std::path::{Path, PathBuf};

use gradlab::data::idx;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "/tmp/fashion-png".into()));
    let files = idx::find_in_folder(Path::new(idx::FASHION_MNIST_DIR))?;
    let (images, labels) = idx::read_pair(&files.train_images, &files.train_labels)?;
    let side = images.rows * images.cols;
    for (i, (px, label)) in images.pixels.chunks_exact(side).zip(&labels).enumerate() {
        let dir = out.join(format!("{label}"));
        std::fs::create_dir_all(&dir)?;
        let img = image::GrayImage::from_raw(images.cols as u32, images.rows as u32, px.to_vec()).ok_or("size")?;
        img.save(dir.join(format!("{i:05}.png")))?;
    }
    println!("wrote {} images under {}", labels.len(), out.display());
    Ok(())
}
