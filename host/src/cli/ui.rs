//! Output for people: progress bars and colour only on a terminal (and never with
//! `NO_COLOR`), plain lines otherwise; `-o json` keeps stdout for one JSON document and
//! sends the narration to stderr.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Print a value as the one JSON document on stdout (policy text in it made inert).
pub fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(v)?;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{}", crate::base::text::inert_json(text)) {
        // A reader that stopped early (`meshup status -o json | head`) is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    #[default]
    Text,
    Json,
}

pub struct Ui {
    pub format: Format,
    tty: bool,
    color: bool,
    multi: Option<MultiProgress>,
}

impl Ui {
    pub fn new(format: Format) -> Ui {
        let tty = std::io::stderr().is_terminal();
        let color = tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        let multi = tty.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Ui {
            format,
            tty,
            color,
            multi,
        }
    }

    /// A Ui that never draws (library callers, tests).
    pub fn quiet() -> Ui {
        Ui {
            format: Format::Text,
            tty: false,
            color: false,
            multi: None,
        }
    }

    pub fn json(&self) -> bool {
        self.format == Format::Json
    }

    pub fn is_tty(&self) -> bool {
        self.tty
    }

    /// Narration: stdout for text output, stderr when stdout carries JSON.
    pub fn say(&self, line: impl AsRef<str>) {
        let line = line.as_ref();
        match &self.multi {
            Some(m) => {
                let _ = m.println(line);
            }
            None if self.json() => eprintln!("{line}"),
            None => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
            }
        }
    }

    pub fn warn(&self, line: impl AsRef<str>) {
        eprintln!(
            "{} {}",
            self.paint("warning:", Color::Yellow),
            line.as_ref()
        );
    }

    pub fn paint(&self, text: &str, color: Color) -> String {
        if !self.color {
            return text.to_string();
        }
        let code = match color {
            Color::Red => 31,
            Color::Green => 32,
            Color::Yellow => 33,
            Color::Cyan => 36,
            Color::Bold => 1,
            Color::Dim => 2,
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }

    /// A progress bar for one component on a terminal; a no-op elsewhere.
    pub fn bar(&self, label: &str, total: u64) -> Bar {
        let Some(m) = &self.multi else {
            return Bar(None);
        };
        let pb = m.add(ProgressBar::new(total.max(1)));
        pb.set_style(
            ProgressStyle::with_template("  {spinner} {prefix:<18} [{bar:20}] {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        pb.set_prefix(label.to_string());
        pb.enable_steady_tick(Duration::from_millis(120));
        Bar(Some(pb))
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Color {
    Red,
    Green,
    Yellow,
    Cyan,
    Bold,
    Dim,
}

pub struct Bar(Option<ProgressBar>);

impl Bar {
    pub fn update(&self, pos: u64, len: u64, msg: &str) {
        if let Some(pb) = &self.0 {
            pb.set_length(len.max(1));
            pb.set_position(pos);
            pb.set_message(msg.to_string());
        }
    }
    pub fn finish(&self, msg: &str) {
        if let Some(pb) = &self.0 {
            pb.finish_with_message(msg.to_string());
        }
    }
}

/// Render rows as a table whose columns line up (like kubectl's).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}   ", w = widths[i]));
            }
        }
        s.trim_end().to_string()
    };
    let mut out = line(header.to_vec());
    for r in rows {
        out.push('\n');
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn tables_line_up() {
        let t = super::table(
            &["NAME", "VERSION"],
            &[
                vec!["istiod".into(), "1.8.6".into()],
                vec!["a".into(), "1.7.8".into()],
            ],
        );
        assert_eq!(t, "NAME     VERSION\nistiod   1.8.6\na        1.7.8");
    }
}
