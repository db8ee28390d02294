//! The setup panel's Device choice (`train.device`).

use egui::Ui;

use crate::device::DeviceChoice;

/// A combo box over `DeviceChoice::OFFERED`; a device whose feature is not built in is shown
/// greyed with the reason on hover, so the choice cannot lead to a run that is sure to fail.
pub fn show(ui: &mut Ui, device: &mut DeviceChoice) -> egui::Response {
    egui::ComboBox::from_id_salt("device")
        .selected_text(device.to_string())
        .show_ui(ui, |ui| {
            for choice in DeviceChoice::OFFERED {
                let why_not = choice.not_built();
                let item = ui
                    .add_enabled(why_not.is_none(), egui::Button::selectable(*device == choice, choice.to_string()))
                    .on_hover_text(choice.help());
                if let Some(why) = why_not {
                    item.on_disabled_hover_text(why);
                } else if item.clicked() {
                    *device = choice;
                }
            }
        })
        .response
        .on_hover_text(device.help())
}
