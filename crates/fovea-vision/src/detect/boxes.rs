//! Boxes in the notes' centre form (bx, by, bw, bh) and in corner form, and their overlap
//! (intersection over union).

/// A box by its centre and size: the notes' (bx, by, bw, bh).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BBox {
    /// centre x (bx)
    pub cx: f32,
    /// centre y (by)
    pub cy: f32,
    /// width (bw)
    pub w: f32,
    /// height (bh)
    pub h: f32,
}

/// A box by its corners: (x0, y0) top left, (x1, y1) bottom right.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Corners {
    /// left
    pub x0: f32,
    /// top
    pub y0: f32,
    /// right
    pub x1: f32,
    /// bottom
    pub y1: f32,
}

impl BBox {
    /// The box centred at (`cx`, `cy`) of size `w` x `h`.
    pub fn new(cx: f32, cy: f32, w: f32, h: f32) -> BBox {
        BBox { cx, cy, w, h }
    }

    /// The box in corner form.
    pub fn corners(&self) -> Corners {
        Corners {
            x0: self.cx - self.w / 2.0,
            y0: self.cy - self.h / 2.0,
            x1: self.cx + self.w / 2.0,
            y1: self.cy + self.h / 2.0,
        }
    }

    /// Width times height; 0 when either is negative.
    pub fn area(&self) -> f32 {
        self.w.max(0.0) * self.h.max(0.0)
    }

    /// Intersection over union; 0 when both boxes are empty.
    pub fn iou(&self, other: &BBox) -> f32 {
        self.corners().iou(&other.corners())
    }

    /// The part of the box inside `[0, width] x [0, height]` (empty if none is).
    pub fn clip(&self, width: f32, height: f32) -> BBox {
        self.corners().clip(width, height).center_form()
    }

    /// The box scaled by `sx` horizontally and `sy` vertically (e.g. from 0..1 to pixels).
    pub fn scale(&self, sx: f32, sy: f32) -> BBox {
        BBox { cx: self.cx * sx, cy: self.cy * sy, w: self.w * sx, h: self.h * sy }
    }
}

impl Corners {
    /// The box in centre form.
    pub fn center_form(&self) -> BBox {
        BBox {
            cx: (self.x0 + self.x1) / 2.0,
            cy: (self.y0 + self.y1) / 2.0,
            w: self.x1 - self.x0,
            h: self.y1 - self.y0,
        }
    }

    /// Width times height; 0 when either is negative.
    pub fn area(&self) -> f32 {
        (self.x1 - self.x0).max(0.0) * (self.y1 - self.y0).max(0.0)
    }

    /// Intersection over union; 0 when both boxes are empty.
    pub fn iou(&self, o: &Corners) -> f32 {
        let iw = (self.x1.min(o.x1) - self.x0.max(o.x0)).max(0.0);
        let ih = (self.y1.min(o.y1) - self.y0.max(o.y0)).max(0.0);
        let inter = iw * ih;
        let union = self.area() + o.area() - inter;
        if union > 0.0 {
            inter / union
        } else {
            0.0
        }
    }

    /// The part of the box inside `[0, width] x [0, height]` (empty if none is).
    pub fn clip(&self, width: f32, height: f32) -> Corners {
        // max/min rather than clamp, which panics on NaN
        let x0 = self.x0.max(0.0).min(width);
        let y0 = self.y0.max(0.0).min(height);
        Corners { x0, y0, x1: self.x1.max(x0).min(width), y1: self.y1.max(y0).min(height) }
    }
}

/// IoU of every box of `a` with every box of `b`, `a.len() x b.len()` row-major.
pub fn iou_matrix(a: &[BBox], b: &[BBox]) -> Vec<f32> {
    let bc: Vec<Corners> = b.iter().map(BBox::corners).collect();
    a.iter()
        .flat_map(|x| {
            let xc = x.corners();
            bc.iter().map(move |y| xc.iou(y))
        })
        .collect()
}

/// IoU of two box shapes placed on the same centre: how anchors and objects are matched
/// (YOLO) and compared in k-means.
pub fn shape_iou(w0: f32, h0: f32, w1: f32, h1: f32) -> f32 {
    let inter = w0.min(w1).max(0.0) * h0.min(h1).max(0.0);
    let union = w0.max(0.0) * h0.max(0.0) + w1.max(0.0) * h1.max(0.0) - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_notes_iou_example_and_conversions() {
        // two 2x2 squares overlapping in a 1x1 corner: 1 / (4 + 4 - 1)
        let a = BBox::new(1.0, 1.0, 2.0, 2.0);
        let b = BBox::new(2.0, 2.0, 2.0, 2.0);
        assert!((a.iou(&b) - 1.0 / 7.0).abs() < 1e-7);
        assert_eq!(a.iou(&a), 1.0);
        assert_eq!(a.iou(&BBox::new(10.0, 10.0, 2.0, 2.0)), 0.0);
        assert_eq!(BBox::new(0.0, 0.0, 0.0, 0.0).iou(&BBox::new(0.0, 0.0, 0.0, 0.0)), 0.0);
        let c = a.corners();
        assert_eq!(c, Corners { x0: 0.0, y0: 0.0, x1: 2.0, y1: 2.0 });
        assert_eq!(c.center_form(), a);
        // clipped to a 1.5 x 5 picture
        assert_eq!(a.clip(1.5, 5.0).corners(), Corners { x0: 0.0, y0: 0.0, x1: 1.5, y1: 2.0 });
        assert_eq!(BBox::new(-5.0, -5.0, 2.0, 2.0).clip(4.0, 4.0).area(), 0.0);
        assert_eq!(iou_matrix(&[a, b], &[b]), vec![a.iou(&b), 1.0]);
        assert!((shape_iou(2.0, 1.0, 1.0, 2.0) - 1.0 / 3.0).abs() < 1e-7);
    }
}
