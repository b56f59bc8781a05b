//! Network architectures. Every network is a sequence of named layers ([`layered::LayeredNet`]).

pub mod activation;
pub mod checkpoint;
pub mod layered;
pub mod layout;
pub mod proggan;
pub mod pth;
pub mod upconv;
pub mod vgg;
