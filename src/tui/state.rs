//! Everything the screen shows, as plain data. Only the reducer changes it; views read it.

use std::collections::HashMap;
use std::ops::Range;
use std::path::PathBuf;

use chrono::{DateTime, Utc};

mod shown;

pub use super::action::ScreenWatch;
use super::action::{Op, Target};
use super::filter::Filter;
use super::form::Form;
use super::graphics::{ImageSupport, ScreenImage};
use super::keymap::{Context, Keymap};
pub use super::layout::Tab;
use super::layout::{Areas, Shape};
use super::live::Live;
use super::palette::Palette;
use super::sort::SortColumn;
use crate::backend::Options;
use crate::engine::HostLink;
use crate::engine::host_stats::HostStats;
use crate::engine::screen::has_screen;
use crate::paths::Paths;
use crate::sandbox::{SandboxId, SandboxName, SandboxRecord, SandboxState};
pub use shown::Shown;

/// The sandbox table as drawn (see [`State::table`]).
pub struct TableView<'a> {
    /// Filtered, then sorted.
    pub rows: Vec<&'a SandboxRecord>,
    pub selected: Option<usize>,
    /// The rows in sight: only these are drawn (issue 15: a hundred rows, a screenful seen).
    pub window: Range<usize>,
}

impl<'a> TableView<'a> {
    pub fn visible(&self) -> &[&'a SandboxRecord] {
        &self.rows[self.window.clone()]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Table,
    Detail,
}

/// A yes/no question and what yes does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirm {
    pub question: String,
    pub yes: OnYes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnYes {
    /// Runs this change on the sandbox named.
    Run(Op, SandboxName),
    /// Makes the form's missing project directory, then creates the sandbox; no goes back
    /// to the form.
    CreateProjectDir(Box<Form>),
}

impl Confirm {
    pub fn run(op: Op, name: SandboxName, question: String) -> Confirm {
        Confirm {
            question,
            yes: OnYes::Run(op, name),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overlay {
    Help { scroll: u16 },
    Palette(Palette),
    Confirm(Confirm),
    Form(Form),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    pub text: String,
    pub error: bool,
    pub until: DateTime<Utc>,
}

/// What the pane of a sandbox last looked like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    pub id: SandboxId,
    pub screen: Result<String, String>,
}

/// The screen on view: what is being captured and the latest frame ready to draw.
#[derive(Debug, Clone, Default)]
pub struct ScreenView {
    pub watching: Option<ScreenWatch>,
    /// The latest encoded frame, of the sandbox with this id.
    pub image: Option<(SandboxId, ScreenImage)>,
    /// Why the feed of the sandbox with this id ended (its display went away).
    pub lost: Option<(SandboxId, String)>,
}

/// What the TUI needs from the config, copied so the state stays plain data.
#[derive(Debug, Clone)]
pub struct Settings {
    pub agent: String,
    pub default_network: crate::sandbox::Network,
    pub paths: Paths,
    /// Where the new-sandbox form starts (the deck's working directory).
    pub start_dir: PathBuf,
    /// Shown as `~` in paths.
    pub home: Option<String>,
    /// The opt-ins `[bubblewrap]` turns on, which a new sandbox gets.
    pub default_options: Options,
    /// `notify.bell`: ring the terminal bell when an agent starts waiting (or ends).
    pub bell: bool,
    /// `ui.confirm`: stop and restart ask first.
    pub confirm: bool,
    /// Frames per second of the visible Screen tab, and of the fullscreen view.
    pub screen_fps: f64,
    pub screen_fullscreen_fps: f64,
    pub images: ImageSupport,
}

#[derive(Debug, Clone)]
pub struct State {
    pub keymap: Keymap,
    pub settings: Settings,
    pub records: Vec<SandboxRecord>,
    pub loaded: bool,
    /// By name, so the selection survives re-sorting and refreshes.
    pub selected: Option<SandboxName>,
    pub sort: SortColumn,
    pub sort_reversed: bool,
    pub filter_text: String,
    pub filter_editing: bool,
    pub focus: Focus,
    pub tab: Tab,
    /// The selected sandbox's screen fills the terminal (z).
    pub fullscreen: bool,
    pub screen: ScreenView,
    pub overlay: Option<Overlay>,
    pub flash: Option<Flash>,
    pub preview: Option<Preview>,
    /// How many lines the Agent preview is scrolled up from its bottom (0 follows the pane).
    pub preview_scroll: usize,
    pub capture_in_flight: bool,
    /// Names with a task running on them, shown as "stopping…" and so on.
    pub busy: Vec<(SandboxName, Op)>,
    /// The exact command `start` would run in each managed sandbox, by id (or why none).
    pub start_commands: HashMap<SandboxId, String>,
    pub host: Option<HostStats>,
    /// The hosts of a mirror of several and how each is reached; empty for one engine.
    pub links: Vec<HostLink>,
    pub cpu_percent: Option<f64>,
    /// Agent states, metrics and usage from the workers.
    pub live: Live,
    pub now: DateTime<Utc>,
    pub size: (u16, u16),
    /// Bumped when the terminal lost what it showed (a resize, an attach): the next frame
    /// is drawn whatever else changed.
    pub repaints: u64,
    /// Set by the reducer's `update` alone, when what the screen shows changed (see
    /// [`Shown`]); the main loop draws and clears it.
    pub dirty: bool,
    /// What the last `update` saw on screen.
    pub shown: Option<Shown>,
    pub quit: bool,
}

impl State {
    pub fn new(keymap: Keymap, settings: Settings, now: DateTime<Utc>, size: (u16, u16)) -> State {
        State {
            keymap,
            settings,
            records: Vec::new(),
            loaded: false,
            start_commands: HashMap::new(),
            selected: None,
            sort: SortColumn::default(),
            sort_reversed: false,
            filter_text: String::new(),
            filter_editing: false,
            focus: Focus::Table,
            tab: Tab::Agent,
            fullscreen: false,
            screen: ScreenView::default(),
            overlay: None,
            flash: None,
            preview: None,
            preview_scroll: 0,
            capture_in_flight: false,
            busy: Vec::new(),
            host: None,
            links: Vec::new(),
            cpu_percent: None,
            live: Live::default(),
            now,
            size,
            repaints: 0,
            dirty: true,
            shown: None,
            quit: false,
        }
    }

    /// The table's rows: filtered, then sorted.
    pub fn rows(&self) -> Vec<&SandboxRecord> {
        let filter = Filter::parse(&self.filter_text);
        self.sorted(self.records.iter().filter(|r| filter.matches(r)).collect())
    }

    /// The table as it is drawn: its rows, the selected one's index and the rows in sight.
    pub fn table(&self) -> TableView<'_> {
        let rows = self.rows();
        let selected = self
            .selected
            .as_ref()
            .and_then(|name| rows.iter().position(|r| &r.name == name));
        let shape = self.shape_of(rows.len());
        let window = Areas::of(shape.screen(), &shape).table_window(selected, rows.len());
        TableView {
            rows,
            selected,
            window,
        }
    }

    /// Every sandbox, in the table's order, filter or not (the palette finds them all).
    pub fn rows_unfiltered(&self) -> Vec<&SandboxRecord> {
        self.sorted(self.records.iter().collect())
    }

    fn sorted<'a>(&self, mut rows: Vec<&'a SandboxRecord>) -> Vec<&'a SandboxRecord> {
        rows.sort_by(|a, b| {
            let order = self.sort.compare(a, b, &self.live);
            if self.sort_reversed {
                order.reverse()
            } else {
                order
            }
        });
        rows
    }

    pub fn selected_index(&self) -> Option<usize> {
        let name = self.selected.as_ref()?;
        self.rows().iter().position(|r| &r.name == name)
    }

    pub fn selected_record(&self) -> Option<&SandboxRecord> {
        let name = self.selected.as_ref()?;
        self.rows().into_iter().find(|r| &r.name == name)
    }

    /// Where keys go now.
    pub fn context(&self) -> Context {
        match &self.overlay {
            Some(Overlay::Help { .. }) => Context::Help,
            Some(Overlay::Palette(_)) => Context::Palette,
            Some(Overlay::Confirm(_)) => Context::Confirm,
            Some(Overlay::Form(_)) => Context::Form,
            None if self.filter_editing => Context::Filter,
            None if self.fullscreen => Context::Screen,
            None if self.focus == Focus::Detail => Context::Detail,
            None => Context::List,
        }
    }

    /// What the layout of the screen depends on.
    pub fn shape(&self) -> Shape {
        self.shape_of(self.rows().len())
    }

    fn shape_of(&self, rows: usize) -> Shape {
        Shape {
            size: self.size,
            fullscreen: self.fullscreen,
            tab: self.tab,
            rows,
        }
    }

    pub fn wide(&self) -> bool {
        super::layout::wide(self.size)
    }

    pub fn detail_fits(&self) -> bool {
        super::layout::detail_fits(self.size)
    }

    /// The sandbox whose pane the Agent tab shows right now, if any: never while the tab,
    /// the pane or the sandbox's session is out of sight.
    pub fn preview_target(&self) -> Option<Target> {
        if self.tab != Tab::Agent
            || self.fullscreen
            || !self.detail_fits()
            || matches!(
                self.overlay,
                Some(Overlay::Help { .. } | Overlay::Palette(_) | Overlay::Form(_))
            )
        {
            return None;
        }
        let record = self.selected_record()?;
        let has_session =
            record.managed && matches!(record.state, SandboxState::Running | SandboxState::Exited);
        has_session.then(|| Target::from(record))
    }

    /// The screen feed that should run now: the selected sandbox's, while its Screen tab or
    /// the fullscreen view is in sight, it has a display, and the terminal can show images.
    pub fn screen_wanted(&self) -> Option<ScreenWatch> {
        if !self.settings.images.can_show()
            || matches!(
                self.overlay,
                Some(Overlay::Help { .. } | Overlay::Palette(_) | Overlay::Form(_))
            )
        {
            return None;
        }
        let record = self.selected_record()?;
        if !has_screen(record) {
            return None;
        }
        let area = self.shape().screen_area()?;
        let fps = if self.fullscreen {
            self.settings.screen_fullscreen_fps
        } else {
            self.settings.screen_fps
        };
        Some(ScreenWatch {
            id: record.id.clone(),
            name: record.name.clone(),
            fps,
            cells: (area.width, area.height),
        })
    }

    pub fn busy_with(&self, name: &str) -> Option<Op> {
        self.busy
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .map(|(_, op)| *op)
    }

    /// Counts per state for the header, in a fixed order.
    /// Several hosts in one table: the HOST column, the header's line per host.
    pub fn is_fleet(&self) -> bool {
        self.links.len() > 1
    }

    /// Whether `record`'s host is down (or not up yet): its row is shown greyed.
    pub fn host_is_down(&self, record: &SandboxRecord) -> bool {
        let Some(host) = record.name.split_host().1 else {
            return false;
        };
        self.links
            .iter()
            .any(|l| l.host == host && !l.state.is_up())
    }

    /// How many sandboxes each host has, in the order the hosts were given.
    pub fn host_counts(&self) -> Vec<(&HostLink, usize)> {
        self.links
            .iter()
            .map(|link| {
                let on_host = |r: &&SandboxRecord| r.name.split_host().1 == Some(&link.host);
                (link, self.records.iter().filter(on_host).count())
            })
            .collect()
    }

    pub fn state_counts(&self) -> Vec<(SandboxState, usize)> {
        [
            SandboxState::Running,
            SandboxState::Starting,
            SandboxState::Exited,
            SandboxState::Dead,
            SandboxState::Stopped,
        ]
        .into_iter()
        .map(|s| (s, self.records.iter().filter(|r| r.state == s).count()))
        .filter(|(_, n)| *n > 0)
        .collect()
    }
}
