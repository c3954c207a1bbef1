//! What the screen shows, as a value: the reducer compares it before and after each action
//! and redraws when it changed, so no rule decides "redraw" case by case. Figures that move
//! all the time (uptimes, CPU, memory) enter as the text the views print, through the same
//! formatting functions (`tui::live`): a sample that reads the same draws nothing.

use std::collections::HashMap;
use std::sync::Arc;

use super::{Flash, Focus, Overlay, Preview, ScreenWatch, State, Tab};
use crate::engine::status::Assessment;
use crate::engine::usage::UsageSummary;
use crate::sandbox::{SandboxId, SandboxName, SandboxRecord};
use crate::tui::action::Op;
use crate::tui::graphics::ImageSupport;
use crate::tui::live::{cpu_text, host_figures, mem_text, uptime};
use crate::tui::sort::SortColumn;

/// The screen feed on view: what is watched, the frame's identity, why it ended.
type ScreenShown = (
    Option<ScreenWatch>,
    Option<(SandboxId, usize)>,
    Option<(SandboxId, String)>,
);

#[derive(Debug, Clone, PartialEq)]
pub struct Shown {
    records: Vec<SandboxRecord>,
    /// The table's rows in order (sorting reads live figures).
    rows: Vec<SandboxId>,
    /// UPTIME, CPU and MEM of each row in sight, as drawn.
    figures: Vec<[String; 3]>,
    host: Option<[String; 2]>,
    links: Vec<crate::engine::HostLink>,
    view: View,
    screen: ScreenShown,
    overlay: Option<Overlay>,
    flash: Option<Flash>,
    preview: Option<Preview>,
    busy: Vec<(SandboxName, Op)>,
    start_commands: HashMap<SandboxId, String>,
    agents: HashMap<SandboxId, Assessment>,
    usage: Option<UsageSummary>,
}

/// Where the user is: selection, sort, filter, focus, tab, size.
#[derive(Debug, Clone, PartialEq)]
struct View {
    loaded: bool,
    selected: Option<SandboxName>,
    sort: (SortColumn, bool),
    filter: (String, bool),
    focus: Focus,
    tab: Tab,
    fullscreen: bool,
    preview_scroll: usize,
    size: (u16, u16),
    repaints: u64,
    /// What the terminal can show (the Screen tab says when it cannot).
    images: ImageSupport,
}

impl Shown {
    pub fn of(state: &State) -> Shown {
        let table = state.table();
        let rows = &table.rows;
        // Only the rows in sight: a figure off screen changing draws nothing.
        let figures = table
            .visible()
            .iter()
            .map(|r| {
                let metrics = state.live.metrics_of(r);
                [uptime(r, state.now), cpu_text(metrics), mem_text(metrics)]
            })
            .collect();
        let image = state.screen.image.as_ref().map(|(id, image)| {
            // A new frame is a new image: its identity is enough.
            (id.clone(), Arc::as_ptr(&image.protocol) as usize)
        });
        Shown {
            rows: rows.iter().map(|r| r.id.clone()).collect(),
            figures,
            records: state.records.clone(),
            host: host_figures(state.host.as_ref(), state.cpu_percent),
            links: state.links.clone(),
            view: View {
                loaded: state.loaded,
                selected: state.selected.clone(),
                sort: (state.sort, state.sort_reversed),
                filter: (state.filter_text.clone(), state.filter_editing),
                focus: state.focus,
                tab: state.tab,
                fullscreen: state.fullscreen,
                preview_scroll: state.preview_scroll,
                size: state.size,
                repaints: state.repaints,
                images: state.settings.images.clone(),
            },
            screen: (
                state.screen.watching.clone(),
                image,
                state.screen.lost.clone(),
            ),
            overlay: state.overlay.clone(),
            flash: state.flash.clone(),
            preview: state.preview.clone(),
            busy: state.busy.clone(),
            start_commands: state.start_commands.clone(),
            agents: state.live.agents.clone(),
            usage: state.live.usage.clone(),
        }
    }
}
