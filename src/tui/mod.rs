//! The terminal dashboard: state and `update` (app), events, the view model, views and widgets,
//! themes and key bindings.

pub mod app;
pub mod event;
pub mod keymap;
pub mod model;
pub mod sample;
pub mod theme;
pub mod views;
pub mod waste;
pub mod widgets;
