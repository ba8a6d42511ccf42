//! Text bars that read the same with or without colour.

use ratatui::style::{Color, Style};
use ratatui::text::Span;

const EIGHTHS: [char; 8] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];

/// A bar of `width` cells filled to `permille`/1000 (capped), with eighth-cell precision;
/// the empty part is `░` so the bar's length shows without colour.
pub fn inline_bar(permille: i64, width: usize) -> String {
    let p = permille.clamp(0, 1000) as usize;
    let eighths = p * width * 8 / 1000;
    let full = eighths / 8;
    let rem = eighths % 8;
    let mut s = String::with_capacity(width * 3);
    for _ in 0..full {
        s.push('█');
    }
    if full < width {
        if rem > 0 {
            s.push(EIGHTHS[rem]);
        } else {
            s.push('░');
        }
        for _ in full + 1..width {
            s.push('░');
        }
    }
    s
}

/// Colour for a usage level.
pub fn level_colour(permille: i64) -> Color {
    if permille >= 900 {
        Color::Red
    } else if permille >= 750 {
        Color::Yellow
    } else {
        Color::Green
    }
}

/// One segment of a stacked bar.
pub struct Segment<'a> {
    pub label: &'a str,
    /// The fill character (readable without colour).
    pub glyph: char,
    pub colour: Color,
    pub bytes: i64,
}

/// A stacked bar of `width` cells over `total` bytes: each segment gets its share (at least one
/// cell when non-zero), the rest is free space `·`.
pub fn stacked(
    segments: &[Segment<'_>],
    total: i64,
    width: usize,
    colour: bool,
) -> Vec<Span<'static>> {
    let total = total
        .max(segments.iter().map(|s| s.bytes.max(0)).sum())
        .max(1);
    let mut spans = Vec::new();
    let mut used = 0usize;
    for s in segments {
        if s.bytes <= 0 || used >= width {
            continue;
        }
        let cells =
            ((s.bytes as i128 * width as i128 + total as i128 / 2) / total as i128).max(1) as usize;
        let cells = cells.min(width - used);
        used += cells;
        let style = if colour {
            Style::default().fg(Color::Black).bg(s.colour)
        } else {
            Style::default()
        };
        spans.push(Span::styled(s.glyph.to_string().repeat(cells), style));
    }
    if used < width {
        spans.push(Span::raw("·".repeat(width - used)));
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_bar_fills_by_eighths() {
        assert_eq!(inline_bar(0, 4), "░░░░");
        assert_eq!(inline_bar(500, 4), "██░░");
        assert_eq!(inline_bar(1000, 4), "████");
        assert_eq!(inline_bar(2000, 4), "████");
        assert_eq!(inline_bar(-5, 4), "░░░░");
        // 1/8 of a 4-cell bar is half a cell: 4 eighths = "▌".
        assert_eq!(inline_bar(125, 4), "▌░░░");
        assert_eq!(inline_bar(999, 8).chars().count(), 8);
    }

    #[test]
    fn stacked_bar_has_exact_width_and_shares() {
        let segs = [
            Segment {
                label: "guest",
                glyph: 'G',
                colour: Color::Blue,
                bytes: 600,
            },
            Segment {
                label: "qemu",
                glyph: 'Q',
                colour: Color::Red,
                bytes: 200,
            },
            Segment {
                label: "tiny",
                glyph: 'T',
                colour: Color::Red,
                bytes: 1,
            },
        ];
        let spans = stacked(&segs, 1000, 20, false);
        let text: String = spans.iter().map(|s| s.content.as_ref()).collect();
        assert_eq!(text.chars().count(), 20);
        assert_eq!(text, "GGGGGGGGGGGGQQQQT···");
    }
}
