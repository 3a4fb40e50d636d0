//! The terminal dashboard: state and `update` (app), events, the view model, views and widgets,
//! themes and key bindings.

pub mod app;
pub mod cursor;
pub mod demo;
pub mod event;
pub mod follow;
pub mod keymap;
pub mod live;
pub mod model;
pub mod runtime;
pub mod sample;
pub mod terminal;
pub mod theme;
pub mod trends;
pub mod views;
pub mod waste;
pub mod widgets;
