//! Tokenizer pieces shown as text: sub-word pieces joined by their tokenizer's conventions.
//!
//! Byte-level BPE (GPT-2) marks a word start with `Ġ` (a space) and maps every byte to a
//! printable character (`Ċ` is a newline); WordPiece (BERT) marks a word's continuation with
//! `##`; SentencePiece (T5) marks a word start with `▁`. [`display_tokens`] turns the raw pieces
//! into display text whose concatenation reads as the sentence, and says which piece starts a word.

use serde::{Deserialize, Serialize};

/// How a tokenizer marks word boundaries in its pieces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PieceConvention {
    /// GPT-2's byte-level BPE: `Ġ` is a leading space, every byte has its own character.
    ByteLevel,
    /// BERT's WordPiece: `##` continues the previous word.
    WordPiece,
    /// SentencePiece: `▁` is a leading space.
    SentencePiece,
    /// Pieces are shown as they are.
    Plain,
}

impl PieceConvention {
    /// The convention of a model family, or guessed from the pieces for an unknown family.
    pub fn detect(family: &str, pieces: &[String]) -> Self {
        match family {
            "gpt2" | "gpt_neo" | "gptj" | "roberta" => return Self::ByteLevel,
            "bert" | "distilbert" => return Self::WordPiece,
            "t5" | "mt5" | "albert" => return Self::SentencePiece,
            _ => {}
        }
        if pieces.iter().any(|p| p.contains('Ġ') || p.contains('Ċ')) {
            Self::ByteLevel
        } else if pieces.iter().any(|p| p.starts_with("##")) {
            Self::WordPiece
        } else if pieces.iter().any(|p| p.contains('▁')) {
            Self::SentencePiece
        } else {
            Self::Plain
        }
    }
}

/// One piece as it is shown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DisplayPiece {
    /// Display text; the pieces' texts concatenated read as the sentence.
    pub text: String,
    /// Whether the piece starts a word (false: it continues the previous piece's word).
    pub word_start: bool,
}

/// Display text and word starts of `pieces` under `convention`.
pub fn display_tokens(pieces: &[String], convention: PieceConvention) -> Vec<DisplayPiece> {
    pieces
        .iter()
        .enumerate()
        .map(|(i, piece)| {
            let (text, marked) = match convention {
                PieceConvention::ByteLevel => {
                    let text = byte_level_text(piece);
                    let marked = text.starts_with(char::is_whitespace);
                    (text, marked)
                }
                PieceConvention::WordPiece => match piece.strip_prefix("##") {
                    Some(rest) => (rest.to_owned(), false),
                    None if i == 0 => (piece.clone(), true),
                    None => (format!(" {piece}"), true),
                },
                PieceConvention::SentencePiece => {
                    let marked = piece.starts_with('▁');
                    (piece.replace('▁', " "), marked)
                }
                PieceConvention::Plain => (piece.clone(), true),
            };
            // A word starts at the first piece, after a special token, or where a marker says so;
            // punctuation without a marker is its own word too.
            let starts_alnum = text.chars().next().is_some_and(char::is_alphanumeric);
            let after_special = i > 0 && is_special(&pieces[i - 1]);
            let word_start = i == 0 || marked || after_special || is_special(piece) || !starts_alnum;
            DisplayPiece { text, word_start }
        })
        .collect()
}

fn is_special(piece: &str) -> bool {
    (piece.starts_with('<') && piece.ends_with('>') && piece.len() > 2)
        || (piece.starts_with('[') && piece.ends_with(']') && piece.len() > 2)
}

/// Undoes GPT-2's `bytes_to_unicode` (Hugging Face `tokenization_gpt2.py`): printable bytes
/// stand for themselves, the other 68 bytes for characters from U+0100 on, in byte order.
/// A piece that splits a multi-byte character shows U+FFFD for its fragment.
fn byte_level_text(piece: &str) -> String {
    let mut bytes = Vec::with_capacity(piece.len());
    for c in piece.chars() {
        match byte_of(c) {
            Some(b) => bytes.push(b),
            None => {
                // Not a byte-level character (an added token): keep it as is.
                let mut buf = [0u8; 4];
                bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn printable(b: u8) -> bool {
    (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b)
}

fn byte_of(c: char) -> Option<u8> {
    let code = u32::from(c);
    if code < 256 {
        let b = code as u8;
        return printable(b).then_some(b);
    }
    let n = (code - 256) as usize;
    (0u8..=255).filter(|&b| !printable(b)).nth(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn byte_level_pieces_join_into_text() {
        let p = pieces(&["Hello", "Ġworld", ",", "Ġun", "believ", "able", "Ċ", "<|endoftext|>"]);
        let d = display_tokens(&p, PieceConvention::detect("gpt2", &p));
        let text: String = d.iter().map(|x| x.text.as_str()).collect();
        assert_eq!(text, "Hello world, unbelievable\n<|endoftext|>");
        let starts: Vec<bool> = d.iter().map(|x| x.word_start).collect();
        assert_eq!(starts, [true, true, true, true, false, false, true, true]);
    }

    #[test]
    fn byte_level_decodes_multibyte_characters() {
        // "é" is bytes C3 A9: both printable, so the piece is "Ã©".
        let d = display_tokens(&pieces(&["ĠcafÃ©"]), PieceConvention::ByteLevel);
        assert_eq!(d[0].text, " café");
    }

    #[test]
    fn wordpiece_and_sentencepiece_join_words() {
        let p = pieces(&["[CLS]", "un", "##believ", "##able", "news", "[SEP]"]);
        let d = display_tokens(&p, PieceConvention::detect("", &p));
        let text: String = d.iter().map(|x| x.text.as_str()).collect();
        assert_eq!(text, "[CLS] unbelievable news [SEP]");
        assert!(!d[2].word_start && d[4].word_start);
        let p = pieces(&["▁un", "believ", "able", "▁news"]);
        let d = display_tokens(&p, PieceConvention::detect("t5", &p));
        let text: String = d.iter().map(|x| x.text.as_str()).collect();
        assert_eq!(text, " unbelievable news");
        assert!(!d[1].word_start && d[3].word_start);
    }
}
