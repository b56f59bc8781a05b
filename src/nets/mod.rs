pub mod pth;
