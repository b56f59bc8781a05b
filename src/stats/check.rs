//! Input checks shared by the statistics: clear errors instead of libtorch panics.

use anyhow::{Result, bail};
use tch::{Kind, Tensor};

/// Checks that `x` is a floating-point `[rows, columns]` matrix and returns its two sizes.
pub(crate) fn float_matrix(x: &Tensor, what: &str) -> Result<(i64, i64)> {
    let size = x.size();
    if size.len() != 2 {
        bail!(
            "{what} must be a [rows, columns] matrix, got shape {size:?}; flatten the other dimensions into rows first"
        );
    }
    if !is_float(x.kind()) {
        bail!(
            "{what} must hold floating-point values, got {:?}; convert it with to_kind(Kind::Float)",
            x.kind()
        );
    }
    Ok((size[0], size[1]))
}

/// Whether `kind` is a floating-point kind.
pub(crate) fn is_float(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Float | Kind::Double | Kind::Half | Kind::BFloat16
    )
}

/// Whether `kind` is an integer kind.
pub(crate) fn is_integer(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Uint8 | Kind::Int8 | Kind::Int16 | Kind::Int | Kind::Int64
    )
}

/// Checks that a batch has the column count fixed by earlier batches.
pub(crate) fn same_columns(known: Option<i64>, got: i64, what: &str) -> Result<()> {
    if let Some(known) = known
        && known != got
    {
        bail!(
            "{what} has {got} columns but earlier data had {known}; every batch of one statistic must have the same units"
        );
    }
    Ok(())
}
