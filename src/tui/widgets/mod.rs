//! Small drawing helpers shared by the views.

pub mod popup;
pub mod preview;
