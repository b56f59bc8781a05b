//! Stroke masks as the page sends them: one bit per image pixel, row-major, most significant
//! bit first, base64-encoded. A mask must be exactly the image's size, so a request's size is
//! bounded by the image's before anything is decoded.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

/// A painted region at the image's resolution.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskBits {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `ceil(width·height / 8)` bytes, base64: pixel `i` (row-major) is bit `7 − i % 8` of
    /// byte `i / 8`.
    pub bits: String,
}

/// Bytes of the packed bits of a `side × side` mask.
pub fn packed_len(side: u32) -> usize {
    (side as usize * side as usize).div_ceil(8)
}

/// Characters of the base64 text of a `side × side` mask.
pub fn encoded_len(side: u32) -> usize {
    packed_len(side).div_ceil(3) * 4
}

impl MaskBits {
    /// Packs a row-major `width × height` region.
    pub fn pack(width: u32, height: u32, on: &[bool]) -> Self {
        let mut bytes = vec![0u8; on.len().div_ceil(8)];
        for (i, _) in on.iter().enumerate().filter(|(_, b)| **b) {
            bytes[i / 8] |= 0x80 >> (i % 8);
        }
        Self {
            width,
            height,
            bits: STANDARD.encode(bytes),
        }
    }

    /// The region as row-major booleans, checked against a `side × side` image; the error
    /// names what is wrong.
    pub fn unpack(&self, side: u32) -> Result<Vec<bool>, String> {
        if (self.width, self.height) != (side, side) {
            return Err(format!(
                "the mask is {}×{} but the image is {side}×{side}; paint the mask at the \
                 image's size",
                self.width, self.height
            ));
        }
        if self.bits.len() != encoded_len(side) {
            return Err(format!(
                "the mask's bits are {} base64 characters but a {side}×{side} mask takes {}",
                self.bits.len(),
                encoded_len(side)
            ));
        }
        let bytes = STANDARD
            .decode(self.bits.as_bytes())
            .map_err(|e| format!("the mask's bits are not base64: {e}"))?;
        let n = side as usize * side as usize;
        if bytes.len() != packed_len(side) {
            return Err(format!(
                "the mask's bits decode to {} bytes but a {side}×{side} mask takes {}",
                bytes.len(),
                packed_len(side)
            ));
        }
        Ok((0..n)
            .map(|i| bytes[i / 8] & (0x80 >> (i % 8)) != 0)
            .collect())
    }

    /// The region as an `[H, W]` float tensor of 0 and 1 for the planner.
    pub fn tensor(&self, side: u32) -> Result<Tensor, String> {
        let on = self.unpack(side)?;
        let values: Vec<f32> = on.iter().map(|&b| f32::from(u8::from(b))).collect();
        Ok(Tensor::from_slice(&values)
            .view([side as i64, side as i64])
            .to_device(Device::Cpu))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    #[test]
    fn bits_round_trip_most_significant_first() {
        let on: Vec<bool> = (0..16).map(|i| i == 0 || i == 9 || i == 15).collect();
        let m = MaskBits::pack(4, 4, &on);
        assert_eq!(STANDARD.decode(&m.bits).unwrap(), [0x80, 0x41]);
        assert_eq!(m.unpack(4).unwrap(), on);
        let t = m.tensor(4).unwrap();
        assert_eq!(t.size(), [4, 4]);
        assert_eq!(f64::try_from(t.sum(Kind::Float)).unwrap(), 3.0);
        assert_eq!(f64::try_from(t.get(2).get(1)).unwrap(), 1.0);
        // a side whose pixel count is not a multiple of 8 pads the last byte
        let odd = MaskBits::pack(3, 3, &[true; 9]);
        assert_eq!(odd.unpack(3).unwrap(), vec![true; 9]);
        assert_eq!(encoded_len(64), 684);
    }

    #[test]
    fn wrong_sizes_and_bad_text_are_refused_with_the_reason() {
        let m = MaskBits::pack(4, 4, &[true; 16]);
        let err = m.unpack(8).unwrap_err();
        assert!(
            err.contains("the mask is 4×4 but the image is 8×8"),
            "{err}"
        );
        let long = MaskBits {
            bits: "A".repeat(1000),
            ..m.clone()
        };
        assert!(long.unpack(4).unwrap_err().contains("take"));
        let bad = MaskBits {
            bits: "!!!!".into(),
            ..m
        };
        assert!(bad.unpack(4).unwrap_err().contains("not base64"));
    }
}
