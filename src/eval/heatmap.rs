//! PNG heatmaps of retrieval results (depth × length, one panel per task family) with the
//! `plotters` bitmap backend. Labels use a built-in 5×7 pixel font drawn pixel by pixel,
//! so no system font (fontconfig, FreeType) is needed.

#![warn(missing_docs)]

use plotters::prelude::*;

use super::retrieval::{fmt_len, FamilyGrid, GridSpec};

/// 5×7 glyphs, rows top to bottom, `#` = ink. Lowercase letters are drawn as uppercase.
const GLYPHS: &[(char, [&str; 7])] = &[
    (
        '0',
        [
            " ### ", "#   #", "#  ##", "# # #", "##  #", "#   #", " ### ",
        ],
    ),
    (
        '1',
        [
            "  #  ", " ##  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### ",
        ],
    ),
    (
        '2',
        [
            " ### ", "#   #", "    #", "   # ", "  #  ", " #   ", "#####",
        ],
    ),
    (
        '3',
        [
            "#####", "   # ", "  #  ", "   # ", "    #", "#   #", " ### ",
        ],
    ),
    (
        '4',
        [
            "   # ", "  ## ", " # # ", "#  # ", "#####", "   # ", "   # ",
        ],
    ),
    (
        '5',
        [
            "#####", "#    ", "#### ", "    #", "    #", "#   #", " ### ",
        ],
    ),
    (
        '6',
        [
            "  ## ", " #   ", "#    ", "#### ", "#   #", "#   #", " ### ",
        ],
    ),
    (
        '7',
        [
            "#####", "    #", "   # ", "  #  ", " #   ", " #   ", " #   ",
        ],
    ),
    (
        '8',
        [
            " ### ", "#   #", "#   #", " ### ", "#   #", "#   #", " ### ",
        ],
    ),
    (
        '9',
        [
            " ### ", "#   #", "#   #", " ####", "    #", "   # ", " ##  ",
        ],
    ),
    (
        'A',
        [
            " ### ", "#   #", "#   #", "#####", "#   #", "#   #", "#   #",
        ],
    ),
    (
        'B',
        [
            "#### ", "#   #", "#   #", "#### ", "#   #", "#   #", "#### ",
        ],
    ),
    (
        'C',
        [
            " ### ", "#   #", "#    ", "#    ", "#    ", "#   #", " ### ",
        ],
    ),
    (
        'D',
        [
            "#### ", "#   #", "#   #", "#   #", "#   #", "#   #", "#### ",
        ],
    ),
    (
        'E',
        [
            "#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#####",
        ],
    ),
    (
        'F',
        [
            "#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#    ",
        ],
    ),
    (
        'G',
        [
            " ### ", "#   #", "#    ", "# ###", "#   #", "#   #", " ####",
        ],
    ),
    (
        'H',
        [
            "#   #", "#   #", "#   #", "#####", "#   #", "#   #", "#   #",
        ],
    ),
    (
        'I',
        [
            " ### ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### ",
        ],
    ),
    (
        'J',
        [
            "  ###", "   # ", "   # ", "   # ", "   # ", "#  # ", " ##  ",
        ],
    ),
    (
        'K',
        [
            "#   #", "#  # ", "# #  ", "##   ", "# #  ", "#  # ", "#   #",
        ],
    ),
    (
        'L',
        [
            "#    ", "#    ", "#    ", "#    ", "#    ", "#    ", "#####",
        ],
    ),
    (
        'M',
        [
            "#   #", "## ##", "# # #", "# # #", "#   #", "#   #", "#   #",
        ],
    ),
    (
        'N',
        [
            "#   #", "#   #", "##  #", "# # #", "#  ##", "#   #", "#   #",
        ],
    ),
    (
        'O',
        [
            " ### ", "#   #", "#   #", "#   #", "#   #", "#   #", " ### ",
        ],
    ),
    (
        'P',
        [
            "#### ", "#   #", "#   #", "#### ", "#    ", "#    ", "#    ",
        ],
    ),
    (
        'Q',
        [
            " ### ", "#   #", "#   #", "#   #", "# # #", "#  # ", " ## #",
        ],
    ),
    (
        'R',
        [
            "#### ", "#   #", "#   #", "#### ", "# #  ", "#  # ", "#   #",
        ],
    ),
    (
        'S',
        [
            " ####", "#    ", "#    ", " ### ", "    #", "    #", "#### ",
        ],
    ),
    (
        'T',
        [
            "#####", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ",
        ],
    ),
    (
        'U',
        [
            "#   #", "#   #", "#   #", "#   #", "#   #", "#   #", " ### ",
        ],
    ),
    (
        'V',
        [
            "#   #", "#   #", "#   #", "#   #", "#   #", " # # ", "  #  ",
        ],
    ),
    (
        'W',
        [
            "#   #", "#   #", "#   #", "# # #", "# # #", "# # #", " # # ",
        ],
    ),
    (
        'X',
        [
            "#   #", "#   #", " # # ", "  #  ", " # # ", "#   #", "#   #",
        ],
    ),
    (
        'Y',
        [
            "#   #", "#   #", " # # ", "  #  ", "  #  ", "  #  ", "  #  ",
        ],
    ),
    (
        'Z',
        [
            "#####", "    #", "   # ", "  #  ", " #   ", "#    ", "#####",
        ],
    ),
    (
        '.',
        [
            "     ", "     ", "     ", "     ", "     ", " ##  ", " ##  ",
        ],
    ),
    (
        ',',
        [
            "     ", "     ", "     ", "     ", " ##  ", "  #  ", " #   ",
        ],
    ),
    (
        '-',
        [
            "     ", "     ", "     ", "#####", "     ", "     ", "     ",
        ],
    ),
    (
        '_',
        [
            "     ", "     ", "     ", "     ", "     ", "     ", "#####",
        ],
    ),
    (
        ':',
        [
            "     ", " ##  ", " ##  ", "     ", " ##  ", " ##  ", "     ",
        ],
    ),
    (
        '/',
        [
            "    #", "    #", "   # ", "  #  ", " #   ", "#    ", "#    ",
        ],
    ),
    (
        '%',
        [
            "##   ", "##  #", "   # ", "  #  ", " #   ", "#  ##", "   ##",
        ],
    ),
    (
        '(',
        [
            "   # ", "  #  ", " #   ", " #   ", " #   ", "  #  ", "   # ",
        ],
    ),
    (
        ')',
        [
            " #   ", "  #  ", "   # ", "   # ", "   # ", "  #  ", " #   ",
        ],
    ),
    (
        '=',
        [
            "     ", "     ", "#####", "     ", "#####", "     ", "     ",
        ],
    ),
    (
        'x',
        [
            "     ", "     ", "#   #", " # # ", "  #  ", " # # ", "#   #",
        ],
    ),
];

/// Width in pixels of `text` at `scale` (6 columns per character, 5 ink + 1 space).
pub fn text_width(text: &str, scale: i32) -> i32 {
    text.chars().count() as i32 * 6 * scale
}

fn draw_text<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    text: &str,
    (x, y): (i32, i32),
    scale: i32,
    color: &RGBColor,
) -> Result<(), String> {
    for (i, ch) in text.chars().enumerate() {
        // `x` for the multiplication sign; everything else is drawn uppercase.
        let key = if ch == 'x' {
            'x'
        } else {
            ch.to_ascii_uppercase()
        };
        let Some((_, rows)) = GLYPHS.iter().find(|(c, _)| *c == key) else {
            continue; // spaces and unknown characters leave a gap
        };
        let x0 = x + i as i32 * 6 * scale;
        for (r, row) in rows.iter().enumerate() {
            for (c, b) in row.bytes().enumerate() {
                if b == b'#' {
                    // Pixel by pixel: plotters skips a filled rectangle of one pixel.
                    for dy in 0..scale {
                        for dx in 0..scale {
                            let px = x0 + c as i32 * scale + dx;
                            let py = y + r as i32 * scale + dy;
                            area.draw_pixel((px, py), color)
                                .map_err(|e| e.to_string())?;
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

const CELL: i32 = 36;
const MARGIN_LEFT: i32 = 70;
const MARGIN_TOP: i32 = 46;
const PANEL_GAP: i32 = 40;

/// One PNG, encoded in memory (the caller writes it whole: a plain file write stopped
/// mid-way left a cut PNG): a panel per family, rows = depths (top: shallowest), columns =
/// lengths; green = correct, red = wrong, with a dot where dense was wrong too (`dense`,
/// same shape, may be empty). Errors: drawing or encoding failures, as text.
pub fn heatmap_png(
    title: &str,
    grid: &GridSpec,
    families: &[FamilyGrid],
    dense: &[FamilyGrid],
) -> Result<Vec<u8>, String> {
    let cols = grid.lengths.len() as i32;
    let rows = grid.depths.len() as i32;
    let panel_w = cols * CELL;
    let width = (MARGIN_LEFT + families.len().max(1) as i32 * (panel_w + PANEL_GAP) + 10).max(530);
    let height = MARGIN_TOP + rows * CELL + 50;
    let (w, h) = (width as u32, height as u32);
    let mut rgb = vec![0u8; w as usize * h as usize * 3];
    draw(&mut rgb, (w, h), title, grid, families, dense)?;
    let mut png = Vec::new();
    {
        use image::ImageEncoder;
        image::codecs::png::PngEncoder::new(&mut png)
            .write_image(&rgb, w, h, image::ColorType::Rgb8)
            .map_err(|e| e.to_string())?;
    }
    Ok(png)
}

/// Draws [`heatmap_png`]'s picture into `rgb` (`w × h` pixels, 3 bytes each).
fn draw(
    rgb: &mut [u8],
    (w, h): (u32, u32),
    title: &str,
    grid: &GridSpec,
    families: &[FamilyGrid],
    dense: &[FamilyGrid],
) -> Result<(), String> {
    let rows = grid.depths.len() as i32;
    let cols = grid.lengths.len() as i32;
    let panel_w = cols * CELL;
    let root = BitMapBackend::with_buffer(rgb, (w, h)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    draw_text(&root, title, (8, 6), 2, &BLACK)?;
    for (di, d) in grid.depths.iter().enumerate() {
        let label = format!("{d:.2}");
        let y = MARGIN_TOP + di as i32 * CELL + CELL / 2 - 7;
        draw_text(&root, &label, (8, y), 2, &BLACK)?;
    }
    let green = RGBColor(46, 160, 67);
    let red = RGBColor(215, 58, 73);
    for (pi, fam) in families.iter().enumerate() {
        let x0 = MARGIN_LEFT + pi as i32 * (panel_w + PANEL_GAP);
        let acc: Vec<usize> = fam
            .correct
            .iter()
            .map(|r| r.iter().filter(|&&c| c).count())
            .collect();
        draw_text(&root, fam.family.name(), (x0, MARGIN_TOP - 18), 2, &BLACK)?;
        let dense_fam = dense.iter().find(|g| g.family == fam.family);
        for (li, row) in fam.correct.iter().enumerate() {
            for (di, &ok) in row.iter().enumerate() {
                let cx = x0 + li as i32 * CELL;
                let cy = MARGIN_TOP + di as i32 * CELL;
                root.draw(&Rectangle::new(
                    [(cx + 1, cy + 1), (cx + CELL - 2, cy + CELL - 2)],
                    if ok { green } else { red }.filled(),
                ))
                .map_err(|e| e.to_string())?;
                let dense_wrong = dense_fam
                    .and_then(|g| g.correct.get(li))
                    .and_then(|r| r.get(di))
                    .is_some_and(|&c| !c);
                if dense_wrong {
                    let m = CELL / 2;
                    root.draw(&Rectangle::new(
                        [(cx + m - 4, cy + m - 4), (cx + m + 3, cy + m + 3)],
                        BLACK.filled(),
                    ))
                    .map_err(|e| e.to_string())?;
                }
            }
            let cx = x0 + li as i32 * CELL;
            let label = fmt_len(grid.lengths[li]);
            let lx = cx + (CELL - text_width(&label, 1)) / 2;
            draw_text(&root, &label, (lx, MARGIN_TOP + rows * CELL + 6), 1, &BLACK)?;
            let a = format!("{}", acc[li]);
            let ax = cx + (CELL - text_width(&a, 1)) / 2;
            draw_text(&root, &a, (ax, MARGIN_TOP + rows * CELL + 20), 1, &BLACK)?;
        }
    }
    draw_text(
        &root,
        "depth (rows) x length (columns); green = found, red = missed, dot = dense missed too",
        (8, MARGIN_TOP + rows * CELL + 36),
        1,
        &BLACK,
    )?;
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}
