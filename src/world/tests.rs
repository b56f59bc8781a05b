//! Behaviour of the whole world: determinism, label coverage, the door/window/roof rules, class
//! content and class balance.

use super::concepts::*;
use super::*;

#[test]
fn placeholder() {
    let s = render(0);
    assert_eq!(s.labels.len(), SIZE * SIZE);
}
