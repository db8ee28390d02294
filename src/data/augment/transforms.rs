//! The geometric transforms on `[C, H, W]` buffers, as plain loops (a batch of MNIST is 100,000
//! values; candle ops would cost more in dispatch than the arithmetic).

/// Mirrors every row (left to right).
pub fn flip_horizontal(values: &mut [f32], c: usize, h: usize, w: usize) {
    for row in values[..c * h * w].chunks_exact_mut(w) {
        row.reverse();
    }
}

/// Mirrors every channel top to bottom.
pub fn flip_vertical(values: &mut [f32], c: usize, h: usize, w: usize) {
    for plane in values[..c * h * w].chunks_exact_mut(h * w) {
        for y in 0..h / 2 {
            let (top, bottom) = plane.split_at_mut((h - 1 - y) * w);
            top[y * w..(y + 1) * w].swap_with_slice(&mut bottom[..w]);
        }
    }
}

/// `out` = `src` rotated by `degrees` (counter-clockwise as drawn, rows running down) about the
/// image's centre, bilinear, with 0 outside the image.
pub fn rotate(src: &[f32], out: &mut [f32], c: usize, h: usize, w: usize, degrees: f32) {
    let (sin, cos) = degrees.to_radians().sin_cos();
    let (cy, cx) = ((h as f32 - 1.0) / 2.0, (w as f32 - 1.0) / 2.0);
    let at = |plane: &[f32], y: isize, x: isize| -> f32 {
        if y < 0 || x < 0 || y >= h as isize || x >= w as isize {
            0.0
        } else {
            plane[y as usize * w + x as usize]
        }
    };
    for (plane, out) in src[..c * h * w].chunks_exact(h * w).zip(out.chunks_exact_mut(h * w)) {
        for y in 0..h {
            let dy = y as f32 - cy;
            for x in 0..w {
                let dx = x as f32 - cx;
                // the source of each output pixel: the inverse rotation
                let sx = cos * dx - sin * dy + cx;
                let sy = sin * dx + cos * dy + cy;
                let (x0, y0) = (sx.floor(), sy.floor());
                let (fx, fy) = (sx - x0, sy - y0);
                let (x0, y0) = (x0 as isize, y0 as isize);
                let top = at(plane, y0, x0) * (1.0 - fx) + at(plane, y0, x0 + 1) * fx;
                let bottom = at(plane, y0 + 1, x0) * (1.0 - fx) + at(plane, y0 + 1, x0 + 1) * fx;
                out[y * w + x] = top * (1.0 - fy) + bottom * fy;
            }
        }
    }
}

/// `out` = `src` moved by `dy` rows down and `dx` columns right (a window of the padded image),
/// 0 where nothing moved in.
pub fn shift(src: &[f32], out: &mut [f32], c: usize, h: usize, w: usize, dy: isize, dx: isize) {
    for (plane, out) in src[..c * h * w].chunks_exact(h * w).zip(out.chunks_exact_mut(h * w)) {
        for y in 0..h {
            let row = &mut out[y * w..(y + 1) * w];
            let sy = y as isize - dy;
            if sy < 0 || sy >= h as isize {
                row.fill(0.0);
                continue;
            }
            for (x, v) in row.iter_mut().enumerate() {
                let sx = x as isize - dx;
                *v = if sx < 0 || sx >= w as isize { 0.0 } else { plane[sy as usize * w + sx as usize] };
            }
        }
    }
}

/// Zeroes the `side` x `side` square at (`top`, `left`) in every channel (clipped to the image).
pub fn cutout(values: &mut [f32], c: usize, h: usize, w: usize, top: usize, left: usize, side: usize) {
    let (bottom, right) = ((top + side).min(h), (left + side).min(w));
    for plane in values[..c * h * w].chunks_exact_mut(h * w) {
        for y in top.min(h)..bottom {
            plane[y * w + left.min(w)..y * w + right].fill(0.0);
        }
    }
}
