//! What the page sends: a scene and its whole stack of strokes, in painting order.
//!
//! The server keeps no stroke history: every change (a stroke, undo, redo, reset, forcing an
//! insertion) sends the stack again, so tabs never share state and the result of a stack is the
//! same whoever asks. Bodies are bounded by the stroke limit and the image's size.

use super::error::ApiError;
use super::mask::{MaskBits, encoded_len};
use crate::edit::Action;
use serde::{Deserialize, Serialize};

/// Strokes per request by default.
pub const DEFAULT_MAX_STROKES: usize = 256;

/// Image ids served by default: `0..DEFAULT_MAX_ID` (drawing id *i* costs the *i* latents
/// before it).
pub const DEFAULT_MAX_ID: u64 = 100_000;

/// One stroke of a stack.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrokeRequest {
    /// `remove` (erase) or `add` (draw).
    pub op: Action,
    /// The concept painted.
    pub concept: String,
    /// Where, at the image's size.
    pub mask: MaskBits,
    /// The strength: the concept's top `k` units (20 when not given).
    #[serde(default)]
    pub k: Option<usize>,
    /// Units to use instead of the top `k`.
    #[serde(default)]
    pub units: Option<Vec<usize>>,
    /// Keep an insertion the context check rejects.
    #[serde(default)]
    pub force: bool,
}

/// A scene of a project painted with a stack of strokes.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaintRequest {
    /// The project.
    pub project: String,
    /// The layer painted (the project's default when not given).
    #[serde(default)]
    pub layer: Option<String>,
    /// Image id.
    pub seed: u64,
    /// Strokes in painting order (none: the original scene).
    #[serde(default)]
    pub strokes: Vec<StrokeRequest>,
}

/// The largest body a paint request of `max_strokes` strokes on `side × side` images needs,
/// with room for names and numbers.
pub fn body_limit(max_strokes: usize, side: u32) -> usize {
    16 * 1024 + max_strokes * (encoded_len(side) + 1024)
}

/// Reads a paint request from a body, with a one-line reason when it cannot.
pub fn parse_paint(body: &[u8], max_strokes: usize) -> Result<PaintRequest, ApiError> {
    let req: PaintRequest = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "cannot read the request: {e}; send {{\"project\": P, \"seed\": N, \"strokes\": \
             [{{\"op\": \"remove\", \"concept\": \"tree\", \"mask\": {{\"width\": W, \
             \"height\": H, \"bits\": BASE64}}}}]}}"
        ))
    })?;
    if req.strokes.len() > max_strokes {
        return Err(ApiError::unprocessable(format!(
            "{} strokes is more than the {max_strokes} a request may hold; reset the scene",
            req.strokes.len()
        )));
    }
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_with_defaults_and_bad_ones_say_why() {
        let m = MaskBits::pack(2, 2, &[true, false, false, true]);
        let body = serde_json::json!({
            "project": "p", "seed": 7,
            "strokes": [{"op": "add", "concept": "door", "mask": m, "force": true}]
        });
        let r = parse_paint(body.to_string().as_bytes(), 4).unwrap();
        assert_eq!((r.layer.clone(), r.seed, r.strokes.len()), (None, 7, 1));
        assert!(r.strokes[0].force && r.strokes[0].k.is_none());
        assert_eq!(r.strokes[0].op, Action::Add);
        let err = parse_paint(b"{not json", 4).unwrap_err();
        assert_eq!(err.status.as_u16(), 400);
        assert!(!err.message.contains('\n'));
        let bad_op = body.to_string().replace("\"add\"", "\"paint\"");
        let err = parse_paint(bad_op.as_bytes(), 4).unwrap_err();
        assert!(err.message.contains("unknown variant"), "{}", err.message);
        let err = parse_paint(body.to_string().as_bytes(), 0).unwrap_err();
        assert_eq!(err.status.as_u16(), 422);
        assert!(err.message.contains("more than the 0"), "{}", err.message);
        assert!(body_limit(256, 64) > 256 * 684);
    }
}
