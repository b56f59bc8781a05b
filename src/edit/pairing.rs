//! Pairs command-line strokes with their masks: `--remove tree --mask a.png --add door
//! --mask b.png` is two strokes, in that order, each with the mask given after it.

use super::plan::Action;
use anyhow::{Result, bail};
use std::path::PathBuf;

/// A stroke named on the command line, before its mask is read.
#[derive(Clone, Debug, PartialEq)]
pub struct StrokeArg {
    /// Remove or add.
    pub action: Action,
    /// The concept.
    pub concept: String,
    /// The mask file.
    pub mask: PathBuf,
}

/// Pairs edits `(position, action, concept)` with masks `(position, path)` by their positions
/// on the command line: each edit takes the first mask after it and before the next edit.
pub fn pair_strokes(
    mut edits: Vec<(usize, Action, String)>,
    mut masks: Vec<(usize, PathBuf)>,
) -> Result<Vec<StrokeArg>> {
    if edits.is_empty() {
        bail!("nothing to paint: give --remove CONCEPT or --add CONCEPT, each with --mask FILE");
    }
    edits.sort_by_key(|e| e.0);
    masks.sort_by_key(|m| m.0);
    if masks.len() != edits.len() {
        bail!(
            "each --remove/--add needs its own --mask after it: got {} edits and {} masks",
            edits.len(),
            masks.len()
        );
    }
    let mut out = Vec::with_capacity(edits.len());
    for (i, ((pos, action, concept), (mpos, mask))) in edits.iter().zip(&masks).enumerate() {
        let next = edits.get(i + 1).map_or(usize::MAX, |e| e.0);
        if mpos < pos || *mpos > next {
            bail!(
                "--mask {} is not between --{action} {concept} and the next edit; write each \
                 --mask right after its --remove/--add",
                mask.display()
            );
        }
        out.push(StrokeArg {
            action: *action,
            concept: concept.clone(),
            mask: mask.clone(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strokes_take_the_mask_written_after_them_in_order() {
        let s = pair_strokes(
            vec![
                (5, Action::Add, "door".into()),
                (1, Action::Remove, "tree".into()),
            ],
            vec![(7, "b.png".into()), (3, "a.png".into())],
        )
        .unwrap();
        assert_eq!(s[0].action, Action::Remove);
        assert_eq!(
            (s[0].concept.as_str(), s[0].mask.to_str()),
            ("tree", Some("a.png"))
        );
        assert_eq!(
            (s[1].concept.as_str(), s[1].mask.to_str()),
            ("door", Some("b.png"))
        );
        let err = pair_strokes(vec![(1, Action::Add, "door".into())], vec![])
            .unwrap_err()
            .to_string();
        assert!(err.contains("got 1 edits and 0 masks"), "{err}");
        let err = pair_strokes(
            vec![
                (1, Action::Add, "door".into()),
                (3, Action::Add, "tree".into()),
            ],
            vec![(5, "a.png".into()), (7, "b.png".into())],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("right after"), "{err}");
        assert!(pair_strokes(vec![], vec![]).is_err());
    }
}
