//! Hook points: the name of every internal activation a user may read or write, as typed data.
//!
//! The names are a public contract (`docs/hooks.md`), in the spirit of TransformerLens'
//! `blocks.{i}.hook_resid_pre`: `embed`, `blocks.{i}.resid_pre`, `blocks.{i}.attn.q` … `final_norm`,
//! with `encoder.` / `decoder.` in front for encoder-decoders. A [`HookPoint`] names one
//! activation; a [`HookPattern`] selects several (`blocks.*.mlp.post`). Both print and parse as
//! the contract writes them. These types need no tensor library.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Which stack of a model a hook point belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stack {
    /// The only stack of a causal or masked model: hook names carry no prefix.
    Main,
    /// The encoder of an encoder-decoder (`encoder.`).
    Encoder,
    /// The decoder of an encoder-decoder (`decoder.`).
    Decoder,
}

impl Stack {
    /// The prefix hook names of this stack carry: `""`, `"encoder."` or `"decoder."`.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Main => "",
            Self::Encoder => "encoder.",
            Self::Decoder => "decoder.",
        }
    }
}

/// A hook point inside a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BlockSite {
    /// `resid_pre`: the residual stream entering the block, `[pos, d_model]`.
    ResidPre,
    /// `attn.q`: queries after any rotary embedding and q norm, `[pos, heads, d_head]`.
    AttnQ,
    /// `attn.k`: keys, `[pos, kv_heads, d_head]`.
    AttnK,
    /// `attn.v`: values, `[pos, kv_heads, d_head]`.
    AttnV,
    /// `attn.pattern`: softmaxed attention weights, `[heads, q_pos, k_pos]`.
    AttnPattern,
    /// `attn.z`: each head's output before the output projection, `[pos, heads, d_head]`.
    AttnZ,
    /// `attn_out`: the attention sublayer's output added to the residual stream, `[pos, d_model]`.
    AttnOut,
    /// `cross_attn.pattern` (decoder blocks of encoder-decoders): cross-attention weights,
    /// `[heads, dec_pos, enc_pos]`.
    CrossAttnPattern,
    /// `resid_mid`: the residual stream between attention (a decoder block's cross-attention
    /// included) and FFN, `[pos, d_model]`.
    ResidMid,
    /// `mlp.post`: the FFN neurons, the input of the FFN output projection, `[pos, d_mlp]`.
    MlpPost,
    /// `mlp_out`: the FFN sublayer's output added to the residual stream, `[pos, d_model]`.
    MlpOut,
    /// `resid_post`: the block's output (before any final norm), `[pos, d_model]`.
    ResidPost,
}

impl BlockSite {
    /// Every block site, in the order a block emits them.
    pub const ALL: [Self; 12] = [
        Self::ResidPre,
        Self::AttnQ,
        Self::AttnK,
        Self::AttnV,
        Self::AttnPattern,
        Self::AttnZ,
        Self::AttnOut,
        Self::CrossAttnPattern,
        Self::ResidMid,
        Self::MlpPost,
        Self::MlpOut,
        Self::ResidPost,
    ];

    /// The name after `blocks.{i}.`.
    pub fn name(self) -> &'static str {
        match self {
            Self::ResidPre => "resid_pre",
            Self::AttnQ => "attn.q",
            Self::AttnK => "attn.k",
            Self::AttnV => "attn.v",
            Self::AttnPattern => "attn.pattern",
            Self::AttnZ => "attn.z",
            Self::AttnOut => "attn_out",
            Self::ResidMid => "resid_mid",
            Self::CrossAttnPattern => "cross_attn.pattern",
            Self::MlpPost => "mlp.post",
            Self::MlpOut => "mlp_out",
            Self::ResidPost => "resid_post",
        }
    }

    /// The hook's shape with the batch dropped, in the contract's words.
    pub fn shape(self) -> &'static str {
        match self {
            Self::ResidPre | Self::AttnOut | Self::ResidMid | Self::MlpOut | Self::ResidPost => "[pos, d_model]",
            Self::AttnQ | Self::AttnZ => "[pos, heads, d_head]",
            Self::AttnK | Self::AttnV => "[pos, kv_heads, d_head]",
            Self::AttnPattern => "[heads, q_pos, k_pos]",
            Self::CrossAttnPattern => "[heads, dec_pos, enc_pos]",
            Self::MlpPost => "[pos, d_mlp]",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// Where in a stack a hook point is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Site {
    /// `embed`: the residual stream entering block 0 (the model's own embedding output).
    Embed,
    /// `blocks.{i}.…`: inside block `i` (0-based).
    Block(usize, BlockSite),
    /// `final_norm`: the stack's output after its final norm (the LM head's input).
    FinalNorm,
}

/// One hook point: an activation of one forward pass, named as in the contract.
///
/// ```
/// use ecco_core::{BlockSite, HookPoint, Stack};
/// let point: HookPoint = "decoder.blocks.2.mlp.post".parse()?;
/// assert_eq!(point, HookPoint::block(Stack::Decoder, 2, BlockSite::MlpPost));
/// assert_eq!(point.to_string(), "decoder.blocks.2.mlp.post");
/// # Ok::<(), ecco_core::HookNameError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HookPoint {
    /// Which stack.
    pub stack: Stack,
    /// Where in it.
    pub site: Site,
}

impl HookPoint {
    /// `{stack}embed`.
    pub fn embed(stack: Stack) -> Self {
        Self { stack, site: Site::Embed }
    }

    /// `{stack}blocks.{block}.{site}`.
    pub fn block(stack: Stack, block: usize, site: BlockSite) -> Self {
        Self { stack, site: Site::Block(block, site) }
    }

    /// `{stack}final_norm`.
    pub fn final_norm(stack: Stack) -> Self {
        Self { stack, site: Site::FinalNorm }
    }

    /// The block index, for a hook inside a block.
    pub fn block_index(&self) -> Option<usize> {
        match self.site {
            Site::Block(i, _) => Some(i),
            _ => None,
        }
    }
}

impl fmt::Display for HookPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = self.stack.prefix();
        match self.site {
            Site::Embed => write!(f, "{prefix}embed"),
            Site::FinalNorm => write!(f, "{prefix}final_norm"),
            Site::Block(i, site) => write!(f, "{prefix}blocks.{i}.{}", site.name()),
        }
    }
}

/// Which blocks a [`HookPattern`] selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Blocks {
    /// `*`: every block.
    Any,
    /// One block.
    Index(usize),
}

/// Where in a stack a [`HookPattern`] points.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SitePattern {
    /// `embed`.
    Embed,
    /// `blocks.{i|*}.…`.
    Block(Blocks, BlockSite),
    /// `final_norm`.
    FinalNorm,
}

/// A selection of hook points: a [`HookPoint`]'s name in which the block index may be `*`
/// (any block), e.g. `blocks.*.mlp.post` or `decoder.blocks.*.cross_attn.pattern`.
///
/// ```
/// use ecco_core::{BlockSite, HookPattern, HookPoint, Stack};
/// let pattern: HookPattern = "blocks.*.resid_post".parse()?;
/// assert!(pattern.matches(&HookPoint::block(Stack::Main, 3, BlockSite::ResidPost)));
/// assert!(!pattern.matches(&HookPoint::block(Stack::Main, 3, BlockSite::ResidPre)));
/// let list = ecco_core::parse_hook_patterns("blocks.*.mlp.post, blocks.3.attn.pattern")?;
/// assert_eq!(list.len(), 2);
/// assert!("blocks.0.mlp.pre".parse::<HookPattern>().is_err());
/// # Ok::<(), ecco_core::HookNameError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HookPattern {
    /// Which stack.
    pub stack: Stack,
    /// Where in it.
    pub site: SitePattern,
}

impl HookPattern {
    /// Whether `point` is one of the hook points this pattern selects.
    pub fn matches(&self, point: &HookPoint) -> bool {
        self.stack == point.stack
            && match (self.site, point.site) {
                (SitePattern::Embed, Site::Embed) | (SitePattern::FinalNorm, Site::FinalNorm) => true,
                (SitePattern::Block(blocks, want), Site::Block(i, site)) => {
                    want == site && (blocks == Blocks::Any || blocks == Blocks::Index(i))
                }
                _ => false,
            }
    }

    /// The hook points of a model with `stacks` (each stack and its number of blocks) that this
    /// pattern selects, in emission order.
    ///
    /// # Errors
    /// A [`HookNameError`] naming the pattern and listing the model's hook points when it
    /// selects none of them (a stack the model does not have, a block past the last, a
    /// cross-attention pattern outside a decoder).
    pub fn resolve(&self, stacks: &[(Stack, usize)]) -> Result<Vec<HookPoint>, HookNameError> {
        let points: Vec<HookPoint> = hook_points(stacks).into_iter().filter(|p| self.matches(p)).collect();
        if points.is_empty() {
            return Err(HookNameError { name: self.to_string(), valid: valid_names(stacks) });
        }
        Ok(points)
    }
}

impl From<HookPoint> for HookPattern {
    fn from(point: HookPoint) -> Self {
        let site = match point.site {
            Site::Embed => SitePattern::Embed,
            Site::FinalNorm => SitePattern::FinalNorm,
            Site::Block(i, site) => SitePattern::Block(Blocks::Index(i), site),
        };
        Self { stack: point.stack, site }
    }
}

impl fmt::Display for HookPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = self.stack.prefix();
        match self.site {
            SitePattern::Embed => write!(f, "{prefix}embed"),
            SitePattern::FinalNorm => write!(f, "{prefix}final_norm"),
            SitePattern::Block(Blocks::Any, site) => write!(f, "{prefix}blocks.*.{}", site.name()),
            SitePattern::Block(Blocks::Index(i), site) => write!(f, "{prefix}blocks.{i}.{}", site.name()),
        }
    }
}

/// A hook name that is not one of the contract's, or that names nothing in a model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookNameError {
    /// The name as given.
    pub name: String,
    /// The valid names (patterns with `{i}` for the block index).
    pub valid: Vec<String>,
}

impl fmt::Display for HookNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown hook `{}` (valid: {})", self.name, self.valid.join(", "))
    }
}

impl std::error::Error for HookNameError {}

/// Every hook name of the contract, `{i}` standing for the block index.
pub fn known_names() -> Vec<String> {
    let mut names = vec!["embed".to_owned()];
    names.extend(BlockSite::ALL.iter().filter(|s| **s != BlockSite::CrossAttnPattern).map(|s| format!("blocks.{{i}}.{}", s.name())));
    names.push("final_norm".to_owned());
    names.push("encoder.… / decoder.… (encoder-decoders)".to_owned());
    names.push("decoder.blocks.{i}.cross_attn.pattern".to_owned());
    names
}

/// The valid names of a model with `stacks`, `{i}` standing for the block index with its range.
fn valid_names(stacks: &[(Stack, usize)]) -> Vec<String> {
    let mut names = Vec::new();
    for &(stack, n) in stacks {
        let p = stack.prefix();
        names.push(format!("{p}embed"));
        for site in BlockSite::ALL {
            if site != BlockSite::CrossAttnPattern || stack == Stack::Decoder {
                names.push(format!("{p}blocks.{{0..{}}}.{}", n.saturating_sub(1), site.name()));
            }
        }
        names.push(format!("{p}final_norm"));
    }
    names
}

/// Every hook point of a model with `stacks` (each stack and its number of blocks), in
/// emission order.
pub fn hook_points(stacks: &[(Stack, usize)]) -> Vec<HookPoint> {
    let mut points = Vec::new();
    for &(stack, n) in stacks {
        points.push(HookPoint::embed(stack));
        for i in 0..n {
            for site in BlockSite::ALL {
                if site != BlockSite::CrossAttnPattern || stack == Stack::Decoder {
                    points.push(HookPoint::block(stack, i, site));
                }
            }
        }
        points.push(HookPoint::final_norm(stack));
    }
    points
}

impl FromStr for HookPattern {
    type Err = HookNameError;

    fn from_str(s: &str) -> Result<Self, HookNameError> {
        let bad = || HookNameError { name: s.to_owned(), valid: known_names() };
        let name = s.trim();
        let (stack, rest) = if let Some(rest) = name.strip_prefix("encoder.") {
            (Stack::Encoder, rest)
        } else if let Some(rest) = name.strip_prefix("decoder.") {
            (Stack::Decoder, rest)
        } else {
            (Stack::Main, name)
        };
        let site = match rest {
            "embed" => SitePattern::Embed,
            "final_norm" => SitePattern::FinalNorm,
            _ => {
                let rest = rest.strip_prefix("blocks.").ok_or_else(bad)?;
                let (index, site) = rest.split_once('.').ok_or_else(bad)?;
                let blocks = match index {
                    "*" => Blocks::Any,
                    // Digits only: `+1` or ` 1` are not block numbers.
                    _ if !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()) => Blocks::Index(index.parse().map_err(|_| bad())?),
                    _ => return Err(bad()),
                };
                let site = BlockSite::from_name(site).ok_or_else(bad)?;
                if site == BlockSite::CrossAttnPattern && stack != Stack::Decoder {
                    return Err(bad());
                }
                SitePattern::Block(blocks, site)
            }
        };
        Ok(Self { stack, site })
    }
}

impl FromStr for HookPoint {
    type Err = HookNameError;

    fn from_str(s: &str) -> Result<Self, HookNameError> {
        let pattern: HookPattern = s.parse()?;
        let site = match pattern.site {
            SitePattern::Embed => Site::Embed,
            SitePattern::FinalNorm => Site::FinalNorm,
            SitePattern::Block(Blocks::Index(i), site) => Site::Block(i, site),
            SitePattern::Block(Blocks::Any, _) => return Err(HookNameError { name: s.to_owned(), valid: known_names() }),
        };
        Ok(Self { stack: pattern.stack, site })
    }
}

/// Parses a comma-separated list of hook patterns (`--capture`'s syntax); empty items are
/// refused.
///
/// # Errors
/// The first name that is not a hook pattern.
pub fn parse_hook_patterns(list: &str) -> Result<Vec<HookPattern>, HookNameError> {
    list.split(',').map(str::parse).collect()
}

impl Serialize for HookPattern {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HookPattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for HookPoint {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HookPoint {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_point_round_trips_through_its_name() {
        let stacks = [(Stack::Encoder, 2), (Stack::Decoder, 3)];
        for point in hook_points(&stacks).into_iter().chain(hook_points(&[(Stack::Main, 2)])) {
            let name = point.to_string();
            assert_eq!(name.parse::<HookPoint>(), Ok(point), "{name}");
            assert_eq!(name.parse::<HookPattern>(), Ok(HookPattern::from(point)), "{name}");
        }
    }

    #[test]
    fn patterns_select_and_bad_names_list_the_valid_ones() {
        let stacks = [(Stack::Main, 4)];
        let p: HookPattern = "blocks.*.mlp.post".parse().unwrap_or_else(|e| panic!("{e}"));
        let points = p.resolve(&stacks).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(points, (0..4).map(|i| HookPoint::block(Stack::Main, i, BlockSite::MlpPost)).collect::<Vec<_>>());
        for bad in [
            "blocks.1.mlp",
            "blocks.x.mlp.post",
            "blocks.-1.resid_pre",
            "embedding",
            "blocks..resid_pre",
            "blocks.1.cross_attn.pattern",
            "",
        ] {
            let e = bad.parse::<HookPattern>().err().unwrap_or_else(|| panic!("{bad} parsed"));
            assert!(e.to_string().contains("blocks.{i}.resid_pre") && e.to_string().contains(&format!("`{bad}`")), "{e}");
        }
        // Well-formed, but not in this model.
        for absent in ["blocks.4.resid_pre", "decoder.embed", "encoder.blocks.*.mlp.post"] {
            let p: HookPattern = absent.parse().unwrap_or_else(|e| panic!("{e}"));
            let e = p.resolve(&stacks).err().unwrap_or_else(|| panic!("{absent} resolved"));
            assert!(e.to_string().contains("blocks.{0..3}.mlp.post"), "{e}");
        }
        assert!("blocks.*.resid_pre".parse::<HookPoint>().is_err());
        let list = parse_hook_patterns("blocks.*.mlp.post,decoder.blocks.0.cross_attn.pattern").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(list[1].to_string(), "decoder.blocks.0.cross_attn.pattern");
        assert!(parse_hook_patterns("embed,").is_err());
    }

    #[test]
    fn serialised_as_names() {
        let p: HookPattern = "encoder.blocks.*.attn.z".parse().unwrap_or_else(|e| panic!("{e}"));
        let json = serde_json::to_string(&p).unwrap_or_default();
        assert_eq!(json, "\"encoder.blocks.*.attn.z\"");
        assert_eq!(serde_json::from_str::<HookPattern>(&json).ok(), Some(p));
    }
}
