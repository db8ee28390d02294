//! Turning text into tokens: words for classification of reviews and fortunes, characters for
//! word lists and language models. Training and [`super::TextInfo::encode`] share these, so a
//! sentence typed in the GUI is cut exactly as the training data was.

/// HTML line breaks as the IMDB reviews hold them; they are layout, not words.
const LINE_BREAKS: [&str; 3] = ["<br />", "<br/>", "<br>"];

/// Word tokens: lower case, `<br />` line breaks dropped, each punctuation mark or symbol a token
/// of its own. A word is a run of letters and digits; an apostrophe between two of them stays in
/// the word ("don't", "o'clock"), so contractions do not fall apart into fragments.
pub fn words(text: &str) -> Vec<String> {
    let mut lower = text.to_lowercase();
    for br in LINE_BREAKS {
        if lower.contains(br) {
            lower = lower.replace(br, " ");
        }
    }
    let chars: Vec<char> = lower.chars().collect();
    let mut out = Vec::new();
    let mut word = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let inner_apostrophe =
            matches!(c, '\'' | '’') && !word.is_empty() && chars.get(i + 1).is_some_and(|n| n.is_alphanumeric());
        if c.is_alphanumeric() || inner_apostrophe {
            word.push(c);
            continue;
        }
        if !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
        if !c.is_whitespace() && !c.is_control() {
            out.push(c.to_string());
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// Character tokens, lower-cased when the set was (word lists); control characters other than
/// line breaks and tabs are dropped.
pub fn chars(text: &str, lowercase: bool) -> Vec<String> {
    let keep = |c: &char| keep_char(*c);
    if lowercase {
        text.chars().flat_map(char::to_lowercase).filter(keep).map(String::from).collect()
    } else {
        text.chars().filter(keep).map(String::from).collect()
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

    #[test]
    fn characters_keep_case_unless_asked() {
        assert_eq!(chars("Ab\u{7}c\n", false), ["A", "b", "c", "\n"]);
        assert_eq!(chars("ÅB", true), ["å", "b"]);
    }
}
