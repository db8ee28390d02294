//! Turning text into tokens: words for classification of reviews and fortunes (characters, for
//! word lists and language models, are cut in [`super::TextInfo`]). Training and [`super::TextInfo::encode`] share these, so a
//! sentence typed in the GUI is cut exactly as the training data was.

/// HTML line breaks as the IMDB reviews hold them; they are layout, not words.
const LINE_BREAKS: [&str; 3] = ["<br />", "<br/>", "<br>"];

/// Word tokens: lower case, `<br />` line breaks dropped, each punctuation mark or symbol a token
/// of its own. A word is a run of letters and digits; an apostrophe between two of them stays in
/// the word ("don't", "o'clock"), so contractions do not fall apart into fragments.
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    each_word(text, |w| {
        out.push(w.to_string());
        true
    });
    out
}

/// Calls `f` with each word token of `text` (as [`words`] cuts them) until it returns false.
/// Tokens are slices of one lower-cased copy: loading a large folder allocates per text, not per
/// word.
pub fn each_word(text: &str, mut f: impl FnMut(&str) -> bool) {
    let mut lower = text.to_lowercase();
    for br in LINE_BREAKS {
        if lower.contains(br) {
            lower = lower.replace(br, " ");
        }
    }
    let mut start: Option<usize> = None;
    let mut chars = lower.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let inner_apostrophe =
            matches!(c, '\'' | '’') && start.is_some() && chars.peek().is_some_and(|(_, n)| n.is_alphanumeric());
        if c.is_alphanumeric() || inner_apostrophe {
            start.get_or_insert(i);
            continue;
        }
        if let Some(s) = start.take() {
            if !f(&lower[s..i]) {
                return;
            }
        }
        if !c.is_whitespace() && !c.is_control() && !f(&lower[i..i + c.len_utf8()]) {
            return;
        }
    }
    if let Some(s) = start {
        f(&lower[s..]);
    }
}

/// Whether a character is text rather than a terminal effect (fortunes hold backspaces and bells).
pub fn keep_char(c: char) -> bool {
    !c.is_control() || matches!(c, '\n' | '\t')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_lower_case_and_split_at_punctuation() {
        assert_eq!(
            words("A GREAT film!<br /><br />Don't miss it, (really)."),
            ["a", "great", "film", "!", "don't", "miss", "it", ",", "(", "really", ")", "."]
        );
        assert_eq!(
            words("end-to-end 3.5/10 'quoted'"),
            ["end", "-", "to", "-", "end", "3", ".", "5", "/", "10", "'", "quoted", "'"]
        );
        assert_eq!(words("  \n\t "), Vec::<String>::new());
        assert_eq!(words("Ünïcode ÉTÉ"), ["ünïcode", "été"]);
    }
}
