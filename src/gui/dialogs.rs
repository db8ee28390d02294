//! Native file dialogs (rfd), or scripted answers for tests. Dialogs run on the UI thread, as the
//! platforms want; the file work they lead to goes to the io thread.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
pub enum Dialogs {
    #[default]
    Native,
    /// Each dialog takes the next answer (`None` = cancelled); for tests.
    Scripted(Arc<Mutex<VecDeque<Option<PathBuf>>>>),
}

impl Dialogs {
    fn scripted(&self) -> Option<Option<PathBuf>> {
        match self {
            Dialogs::Native => None,
            Dialogs::Scripted(answers) => Some(answers.lock().map_or(None, |mut a| a.pop_front().flatten())),
        }
    }

    pub fn open_preset(&self) -> Option<PathBuf> {
        self.scripted().unwrap_or_else(|| {
            rfd::FileDialog::new().set_title("Open preset").add_filter("Gradlab preset", &["toml"]).pick_file()
        })
    }

    pub fn save_file(&self, title: &str, default_name: &str, extension: &str) -> Option<PathBuf> {
        self.scripted().unwrap_or_else(|| {
            rfd::FileDialog::new()
                .set_title(title)
                .set_file_name(default_name)
                .add_filter(extension, &[extension])
                .save_file()
        })
    }

    pub fn pick_file(&self, title: &str) -> Option<PathBuf> {
        self.scripted().unwrap_or_else(|| rfd::FileDialog::new().set_title(title).pick_file())
    }

    pub fn pick_folder(&self, title: &str) -> Option<PathBuf> {
        self.scripted().unwrap_or_else(|| rfd::FileDialog::new().set_title(title).pick_folder())
    }
}
