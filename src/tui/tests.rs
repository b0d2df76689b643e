//! Snapshot and behaviour tests of the app on a real mini catalogue, drawn on a TestBackend with
//! half-block images so every frame is deterministic.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;
use ratatui_image::picker::Picker;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::action::Action;
use super::app::{App, EngineState, Focus, Mode, Tab};
use super::jobs::Jobs;
use super::{layout, ui};
use lookbook::catalog::Catalog;
use lookbook::recommend::Reason;

struct Fx {
    _dir: tempfile::TempDir,
    db: PathBuf,
}

/// The mini catalogue imported, and (optionally) embedded with seeded random weights.
fn fixture(embed: bool) -> Fx {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mini");
    let images = dir.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    for e in std::fs::read_dir(src.join("images")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), images.join(e.file_name())).unwrap();
    }
    let db = dir.path().join("catalog.db");
    let mut cat = Catalog::open(&db).unwrap();
    lookbook::ingest::import(&mut cat, &images, &src.join("styles.csv"), &lookbook::NoProgress).unwrap();
    if embed {
        let w = dir.path().join("w.safetensors");
        let meta: HashMap<String, String> = [("lookbook.input_height", "64"), ("lookbook.input_width", "48")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        lookbook::vision::write_random_weights(&w, 11, 8, meta).unwrap();
        // Random weights make every cosine nearly 1.00, so the snapshots' orders are near-ties
        // that the last bit of a sum decides: f32 on the portable kernels does the same
        // arithmetic on every machine, whatever SIMD level or Winograd tiling the CPU's own
        // kernels would pick.
        let e = lookbook::vision::Embedder::load_on(
            &w,
            lookbook::vision::Pooling::Avg,
            lookbook::vision::Precision::F32,
            lookbook::vision::cpu::Kernels::Portable,
        )
        .unwrap();
        e.embed_catalog(&mut cat, 16, &lookbook::NoProgress).unwrap();
    }
    Fx { _dir: dir, db }
}

fn app(fx: &Fx, images: bool) -> App {
    let picker = images.then(Picker::halfblocks);
    let jobs = Jobs::start(fx.db.clone(), picker);
    let mut app = App::new(fx.db.clone(), "tester", jobs, images).unwrap();
    app.size = Rect::new(0, 0, 110, 34);
    app.settle(Duration::from_secs(60));
    app
}

fn draw(app: &mut App, w: u16, h: u16) -> Terminal<TestBackend> {
    app.size = Rect::new(0, 0, w, h);
    app.settle(Duration::from_secs(60));
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| ui::draw(f, app)).unwrap();
    t
}

fn key(app: &mut App, c: KeyCode) {
    super::handle_event(app, crossterm::event::Event::Key(KeyEvent::from(c)));
}

fn screen(t: &Terminal<TestBackend>) -> String {
    t.backend().to_string()
}

#[test]
fn browse_screen() {
    let fx = fixture(true);
    let mut a = app(&fx, true);
    assert_eq!(a.engine_state, EngineState::Ready);
    let t = draw(&mut a, 110, 34);
    insta::assert_snapshot!("browse", screen(&t));
}

#[test]
fn similar_screen_after_enter() {
    let fx = fixture(true);
    let mut a = app(&fx, true);
    key(&mut a, KeyCode::Char('j'));
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.tab, Tab::Similar);
    let anchor = a.rows(Tab::Browse)[1];
    assert!(
        !a.rows(Tab::Similar).contains(&anchor),
        "the query is not its own look-alike"
    );
    let t = draw(&mut a, 110, 34);
    insta::assert_snapshot!("similar", screen(&t));
}

#[test]
fn like_updates_for_you_at_once_with_an_explanation() {
    let fx = fixture(true);
    let mut a = app(&fx, false);
    a.update(Action::Tab(2));
    assert!(
        a.rankings
            .feed
            .iter()
            .all(|r| matches!(r.reason, Reason::Typical { .. } | Reason::Popular { .. })),
        "cold start first"
    );
    a.update(Action::Tab(0));
    let liked = a.current_id().unwrap();
    a.update(Action::ToggleLike);
    assert_eq!(a.opinion(liked), Some(true));
    assert!(!a.rows(Tab::ForYou).contains(&liked), "a liked item never comes back");
    assert!(matches!(a.rankings.feed[0].reason, Reason::YouLiked { id, .. } if id == liked));
    a.update(Action::Tab(2));
    let t = draw(&mut a, 110, 34);
    let s = screen(&t);
    assert!(s.contains("because you liked"), "{s}");
    insta::assert_snapshot!("for_you", s);
    // Toggle back: the like is gone and the feed is cold again.
    a.update(Action::Tab(0));
    a.update(Action::ToggleLike);
    assert_eq!(a.opinion(liked), None);
}

#[test]
fn liked_tab_lists_likes_and_dislikes() {
    let fx = fixture(true);
    let mut a = app(&fx, false);
    a.update(Action::ToggleLike);
    a.update(Action::Down);
    // Feedback is stamped in milliseconds and listed newest first: make the order certain.
    std::thread::sleep(std::time::Duration::from_millis(5));
    a.update(Action::ToggleDislike);
    a.update(Action::Tab(3));
    assert_eq!(a.rows(Tab::Liked).len(), 2);
    let t = draw(&mut a, 100, 30);
    insta::assert_snapshot!("liked", screen(&t));
}

#[test]
fn help_overlay_lists_every_binding() {
    let fx = fixture(true);
    let mut a = app(&fx, false);
    key(&mut a, KeyCode::Char('?'));
    assert_eq!(a.mode, Mode::Help);
    let t = draw(&mut a, 100, 30);
    let s = screen(&t);
    for b in super::keys::BINDINGS {
        assert!(s.contains(b.help), "help misses {}", b.help);
    }
    insta::assert_snapshot!("help", s);
    key(&mut a, KeyCode::Char('x'));
    assert_eq!(a.mode, Mode::Normal);
}

#[test]
fn filters_restrict_the_list_and_the_rankings() {
    let fx = fixture(true);
    let mut a = app(&fx, false);
    key(&mut a, KeyCode::Char('f'));
    let Mode::Filters(p) = &a.mode else {
        panic!("filters did not open")
    };
    let watches = p.choices[0].iter().position(|(c, _)| c == "Watches").unwrap();
    for _ in 0..watches {
        key(&mut a, KeyCode::Char('j'));
    }
    let t = draw(&mut a, 100, 30);
    insta::assert_snapshot!("filters", screen(&t));
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.filter.category.as_deref(), Some("Watches"));
    assert_eq!(a.rows(Tab::Browse).len(), 6);
    assert!(
        a.rankings
            .feed
            .iter()
            .all(|r| a.product(r.id).unwrap().article_type == "Watches")
    );
    key(&mut a, KeyCode::Esc);
    assert_eq!(a.rows(Tab::Browse).len(), 48, "Esc clears filters in Browse");
}

#[test]
fn search_narrows_by_name() {
    let fx = fixture(true);
    let mut a = app(&fx, false);
    key(&mut a, KeyCode::Char('/'));
    for c in "watch".chars() {
        key(&mut a, KeyCode::Char(c));
    }
    key(&mut a, KeyCode::Enter);
    let rows = a.rows(Tab::Browse);
    assert!(!rows.is_empty() && rows.len() < 48);
    assert!(rows.iter().all(|id| {
        let p = a.product(*id).unwrap();
        format!("{} {}", p.name, p.article_type)
            .to_lowercase()
            .contains("watch")
    }));
    // typed letters went to the search, not to the key map
    assert!(a.feedback.is_empty());
}

#[test]
fn alpha_and_diversity_keys_re_rank() {
    let fx = fixture(true);
    let mut a = app(&fx, false);
    a.update(Action::ToggleLike);
    a.update(Action::Down);
    a.update(Action::Down);
    a.update(Action::OpenSimilar);
    for _ in 0..10 {
        key(&mut a, KeyCode::Char(']'));
    }
    assert!((a.alpha - 1.0).abs() < 1e-6);
    assert!(
        a.rankings
            .similar
            .iter()
            .all(|r| matches!(r.reason, Reason::LooksLike { .. })),
        "alpha 1 is pure look-alikes"
    );
    for _ in 0..10 {
        key(&mut a, KeyCode::Char('['));
    }
    assert!(a.alpha.abs() < 1e-6);
    assert!((a.diversity - 0.3).abs() < 1e-6, "the measured default");
    for want in [0.5, 0.7, 0.0, 0.3] {
        key(&mut a, KeyCode::Char('v'));
        assert!(
            (a.diversity - want).abs() < 1e-6,
            "{} after v, want {want}",
            a.diversity
        );
    }
}

#[test]
fn tiny_terminal_shows_a_message_instead_of_crashing() {
    let fx = fixture(true);
    let mut a = app(&fx, true);
    let t = draw(&mut a, 20, 5);
    assert!(screen(&t).contains("too small"));
    for (w, h) in [(1, 1), (50, 14), (49, 30), (300, 80)] {
        draw(&mut a, w, h);
    }
}

#[test]
fn mouse_click_selects_a_row() {
    let fx = fixture(true);
    let mut a = app(&fx, false);
    a.size = Rect::new(0, 0, 100, 30);
    let l = layout::layout(a.size);
    a.update(Action::ClickAt(l.list.x + 3, l.list.y + 4));
    assert_eq!(a.selected_row(), 3);
    a.settle(Duration::from_secs(60));
    let cells = layout::strip_cells(l.strip, a.rankings.strip.len());
    assert!(
        cells.len() >= 2,
        "the strip shows look-alikes at 100x30: {} cells for {} items",
        cells.len(),
        a.rankings.strip.len()
    );
    a.update(Action::ClickAt(cells[1].x + 1, cells[1].y + 1));
    assert_eq!((a.focus, a.strip.sel), (Focus::Strip, 1));
}

#[test]
fn catalogue_without_vectors_still_opens_and_says_what_to_do() {
    let fx = fixture(false);
    let mut a = app(&fx, false);
    assert!(matches!(a.engine_state, EngineState::Missing(_)));
    let t = draw(&mut a, 100, 30);
    let s = screen(&t);
    assert!(s.contains("press e to embed"), "{s}");
    insta::assert_snapshot!("no_vectors", s);
}

#[test]
fn switching_user_creates_and_swaps_feedback() {
    let fx = fixture(true);
    let mut a = app(&fx, false);
    a.update(Action::ToggleLike);
    key(&mut a, KeyCode::Char('u'));
    for c in "zoe".chars() {
        key(&mut a, KeyCode::Char(c));
    }
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.user.1, "zoe");
    assert!(a.feedback.is_empty());
    key(&mut a, KeyCode::Char('u'));
    for c in "tester".chars() {
        key(&mut a, KeyCode::Char(c));
    }
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.feedback.len(), 1);
}

/// Every cell of the frame, checked for characters a terminal would act on.
fn unsafe_cells(t: &Terminal<TestBackend>) -> Vec<String> {
    t.backend()
        .buffer()
        .content
        .iter()
        .map(|c| c.symbol().to_string())
        .filter(|s| s.chars().any(lookbook::text::is_unsafe))
        .collect()
}

#[test]
fn escapes_written_into_the_database_by_another_tool_never_reach_the_frame() {
    let fx = fixture(true);
    let evil = "\u{1b}]52;c;ZXZpbA==\u{7}\u{1b}[2JEvil \u{9b}31m\u{202e}shoe";
    {
        let conn = rusqlite::Connection::open(&fx.db).unwrap();
        conn.execute("UPDATE products SET name = ?1, colour = ?1", [evil])
            .unwrap();
    }
    let mut a = app(&fx, true);
    for tab in [
        KeyCode::Char('1'),
        KeyCode::Enter,
        KeyCode::Char('l'),
        KeyCode::Char('3'),
        KeyCode::Char('4'),
    ] {
        key(&mut a, tab);
        let t = draw(&mut a, 110, 34);
        assert!(unsafe_cells(&t).is_empty(), "{:?}", unsafe_cells(&t));
        assert!(screen(&t).contains("Evil"), "the name is still shown");
    }
}

#[test]
fn embedding_from_the_app_keeps_a_trained_head_active() {
    let fx = fixture(true);
    let dir = fx.db.parent().unwrap();
    // Where the app looks for weights: models/ beside the database.
    std::fs::create_dir_all(dir.join("models")).unwrap();
    std::fs::copy(
        dir.join("w.safetensors"),
        dir.join("models").join(lookbook::vision::weights::FILE_NAMES[0]),
    )
    .unwrap();
    let head_model = {
        let mut cat = Catalog::open(&fx.db).unwrap();
        let s = lookbook::train::Settings {
            epochs: 3,
            ..Default::default()
        };
        lookbook::train::train_catalog(&mut cat, &s, true, &lookbook::NoProgress).unwrap();
        let active = cat.active_model().unwrap().unwrap();
        assert!(active.spec.head_id.is_some(), "the head is active after training");
        active.id
    };
    let mut a = app(&fx, false);
    a.update(Action::EmbedMissing);
    a.settle(Duration::from_secs(120));
    let cat = Catalog::open(&fx.db).unwrap();
    assert_eq!(
        cat.active_model().unwrap().unwrap().id,
        head_model,
        "`e` must not swap the ranking model"
    );
}

#[test]
fn a_click_anywhere_on_a_drawn_tab_title_selects_that_tab() {
    let fx = fixture(true);
    let mut a = app(&fx, false);
    key(&mut a, KeyCode::Char('l')); // so "Liked 1" has a count too
    let t = draw(&mut a, 110, 34);
    let row: String = (0..110)
        .map(|x| t.backend().buffer()[(x, 0)].symbol().to_string())
        .collect::<Vec<_>>()
        .concat();
    for (i, tab) in Tab::ALL.iter().enumerate() {
        let label = format!("{} {}", tab.title(), a.row_count(*tab));
        let start = row
            .find(&label)
            .unwrap_or_else(|| panic!("{label:?} not drawn in {row:?}"));
        let start = row[..start].chars().count() as u16;
        for dx in 0..label.chars().count() as u16 {
            // Start from another tab each time, so a click that does nothing is caught too.
            a.update(Action::Tab((i + 1) % Tab::ALL.len()));
            a.update(Action::ClickAt(start + dx, 0));
            assert_eq!(a.tab, *tab, "click on column {} of {label:?}", dx);
        }
    }
}

/// One random input for the app: a key (with modifiers), a click, a wheel turn or a resize.
#[derive(Debug, Clone)]
enum Input {
    Key(KeyCode, crossterm::event::KeyModifiers),
    Click(u16, u16),
    Wheel(bool),
    Resize(u16, u16),
}

fn input() -> impl proptest::strategy::Strategy<Value = Input> {
    use crossterm::event::KeyModifiers as M;
    use proptest::prelude::*;
    let code = prop_oneof![
        // Mostly bound keys, so the sequences reach deep states; some anything-goes characters.
        proptest::sample::select(vec![
            'j', 'k', 'g', 'G', 'l', 'd', '/', 'f', 'u', '[', ']', 'v', 'e', '1', '2', '3', '4', '?', 'x', ' ',
            '\u{1b}'
        ])
        .prop_map(KeyCode::Char),
        any::<char>().prop_map(KeyCode::Char),
        proptest::sample::select(vec![
            KeyCode::Enter,
            KeyCode::Esc,
            KeyCode::Tab,
            KeyCode::BackTab,
            KeyCode::Backspace,
            KeyCode::Left,
            KeyCode::Right,
            KeyCode::Up,
            KeyCode::Down,
            KeyCode::PageDown,
            KeyCode::PageUp,
            KeyCode::Home,
            KeyCode::End,
        ]),
    ];
    let mods = proptest::sample::select(vec![M::NONE, M::NONE, M::NONE, M::SHIFT, M::CONTROL, M::ALT]);
    prop_oneof![
        6 => (code, mods).prop_map(|(c, m)| Input::Key(c, m)),
        2 => (0u16..120, 0u16..40).prop_map(|(x, y)| Input::Click(x, y)),
        1 => any::<bool>().prop_map(Input::Wheel),
        1 => (1u16..130, 1u16..45).prop_map(|(w, h)| Input::Resize(w, h)),
    ]
}

/// The app's input handling, fuzzed: random key, mouse and resize sequences (never `q`, so the
/// app keeps going) against `handle_event` and `ui::draw` on a TestBackend. No panic, and no
/// character a terminal would act on in any frame.
#[test]
fn random_input_sequences_never_panic_or_leak_escapes() {
    use crossterm::event::{Event, KeyEvent, MouseEvent, MouseEventKind};
    use proptest::test_runner::{Config, TestRunner};
    let fx = fixture(true);
    let mut runner = TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&proptest::collection::vec(input(), 1..60), |inputs| {
        let mut a = app(&fx, true);
        let (mut w, mut h) = (100u16, 30u16);
        for i in inputs {
            let ev = match i {
                Input::Key(KeyCode::Char('q'), _) | Input::Key(KeyCode::Char('c'), _) => continue,
                Input::Key(c, m) => Event::Key(KeyEvent::new(c, m)),
                Input::Click(x, y) => Event::Mouse(MouseEvent {
                    kind: MouseEventKind::Down(crossterm::event::MouseButton::Left),
                    column: x,
                    row: y,
                    modifiers: crossterm::event::KeyModifiers::NONE,
                }),
                Input::Wheel(down) => Event::Mouse(MouseEvent {
                    kind: if down {
                        MouseEventKind::ScrollDown
                    } else {
                        MouseEventKind::ScrollUp
                    },
                    column: 1,
                    row: 5,
                    modifiers: crossterm::event::KeyModifiers::NONE,
                }),
                Input::Resize(nw, nh) => {
                    (w, h) = (nw, nh);
                    Event::Resize(nw, nh)
                }
            };
            super::handle_event(&mut a, ev);
            if a.quit {
                break;
            }
            a.size = Rect::new(0, 0, w, h);
            a.prepare(a.size);
            let mut t = Terminal::new(TestBackend::new(w, h))
                .map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            t.draw(|f| ui::draw(f, &a))
                .map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            proptest::prop_assert!(unsafe_cells(&t).is_empty(), "{:?}", unsafe_cells(&t));
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Graphics protocols (kitty here) put escape sequences into the frame on purpose: the
/// sanitising pass over the text must not wipe the photos out.
#[test]
fn photos_drawn_with_a_graphics_protocol_survive_the_sanitiser() {
    let fx = fixture(true);
    let mut picker = Picker::halfblocks();
    picker.set_protocol_type(ratatui_image::picker::ProtocolType::Kitty);
    let jobs = Jobs::start(fx.db.clone(), Some(picker));
    let mut a = App::new(fx.db.clone(), "tester", jobs, true).unwrap();
    let t = draw(&mut a, 110, 34);
    let escapes = t
        .backend()
        .buffer()
        .content
        .iter()
        .filter(|c| c.symbol().contains("\u{1b}_G"))
        .count();
    assert!(escapes > 0, "no kitty image in the frame");
}

#[test]
fn typed_text_is_driven_by_actions_too() {
    let fx = fixture(true);
    let mut a = app(&fx, false);
    let all = a.browse.len();
    a.update(Action::StartSearch);
    for c in "shoe".chars() {
        a.update(Action::Type(c));
    }
    a.update(Action::Submit);
    assert_eq!(a.mode, Mode::Normal);
    assert!(
        a.browse.len() < all && !a.browse.is_empty(),
        "{} of {all}",
        a.browse.len()
    );
    a.update(Action::StartSearch);
    a.update(Action::Cancel);
    assert_eq!(a.browse.len(), all, "Cancel clears the search");
}

/// An app as `lookbook serve` makes it for a session (a guest when `guest`).
fn remote_app(fx: &Fx, user: &str, guest: bool) -> App {
    let cat = Catalog::open(&fx.db).unwrap();
    let products = std::sync::Arc::new(super::app::ProductList::new(cat.products().unwrap()));
    let catalog = std::sync::Arc::new(std::sync::Mutex::new(cat));
    let jobs = Jobs::start(fx.db.clone(), None);
    let mut app = App::new_remote(user, guest, jobs, false, &catalog, &products).unwrap();
    app.size = Rect::new(0, 0, 110, 34);
    app.settle(Duration::from_secs(60));
    app
}

#[test]
fn a_serve_session_cannot_switch_user_and_its_help_leaves_local_keys_out() {
    let fx = fixture(true);
    let mut a = remote_app(&fx, "ana", false);
    key(&mut a, KeyCode::Char('u'));
    assert_eq!(a.mode, Mode::Normal, "u opened a prompt over SSH");
    assert!(a.status.contains("ana"), "{}", a.status);
    // Even a prompt forced open cannot switch: the submit is refused too.
    a.mode = Mode::Prompt(super::app::PromptKind::User, "alice".into());
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.user.1, "ana");
    key(&mut a, KeyCode::Char('?'));
    let s = screen(&draw(&mut a, 110, 34));
    for b in super::keys::BINDINGS {
        assert_eq!(s.contains(b.help), !b.action.local_only(), "{}", b.help);
    }
}

#[test]
fn a_guest_likes_in_memory_and_the_catalogue_gets_no_user() {
    let fx = fixture(true);
    let users_before = Catalog::open(&fx.db).unwrap().users().unwrap();
    let mut a = remote_app(&fx, "guest-1", true);
    key(&mut a, KeyCode::Char('j'));
    key(&mut a, KeyCode::Char('l'));
    key(&mut a, KeyCode::Char('j'));
    key(&mut a, KeyCode::Char('d'));
    assert_eq!(a.feedback.len(), 2, "{}", a.status);
    assert!(a.feedback[0].weight < 0.0 && a.feedback[1].weight > 0.0, "newest first");
    assert!(!a.refresh_feedback(), "nothing to refresh for a guest");
    assert_eq!(a.feedback.len(), 2);
    assert_eq!(Catalog::open(&fx.db).unwrap().users().unwrap(), users_before);
}

#[test]
fn help_shows_the_keys_of_the_mode_it_was_opened_from_and_goes_back_there() {
    let fx = fixture(true);
    let mut a = app(&fx, false);
    key(&mut a, KeyCode::Char('f'));
    key(&mut a, KeyCode::Char('j'));
    let Mode::Filters(before) = a.mode.clone() else {
        panic!("filters did not open")
    };
    key(&mut a, KeyCode::Char('?'));
    assert_eq!(a.mode, Mode::Help);
    let s = screen(&draw(&mut a, 100, 30));
    for b in super::keys::FILTER_BINDINGS {
        assert!(s.contains(b.help), "the picker's help misses {}", b.help);
    }
    assert!(s.contains("Keys in the filter picker"), "{s}");
    assert!(!s.contains("like / unlike"), "the normal keys are not the picker's");
    key(&mut a, KeyCode::Char('x'));
    assert_eq!(a.mode, Mode::Filters(before), "back in the picker, as it was");
    // Typing in a search goes through the key map too: `q` is text there, not quit.
    key(&mut a, KeyCode::Esc);
    key(&mut a, KeyCode::Char('/'));
    for c in "qj".chars() {
        key(&mut a, KeyCode::Char(c));
    }
    assert!(!a.quit);
    assert_eq!(a.search, "qj");
    key(&mut a, KeyCode::Down);
    assert_eq!(a.mode, Mode::Normal, "an arrow accepts the search");
}

/// The shop fixture's Merchant feed imported (brands, prices, stock, links), photos local.
fn shop_fixture() -> Fx {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shop.db");
    let shop = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/shop");
    let mut cat = Catalog::open(&db).unwrap();
    let opts = lookbook::ingest::ImportOptions {
        images: Some(shop.join("cdn")),
        ..Default::default()
    };
    lookbook::ingest::import_any(&mut cat, &shop.join("google_feed.tsv"), &opts, &lookbook::NoProgress).unwrap();
    Fx { _dir: dir, db }
}

/// The cells that open a hyperlink, as (symbol, the width the diff gives them).
fn link_cells(t: &Terminal<TestBackend>) -> Vec<(String, u16)> {
    use ratatui::buffer::CellDiffOption;
    t.backend()
        .buffer()
        .content
        .iter()
        .filter(|c| c.symbol().starts_with("\u{1b}]8;;"))
        .map(|c| {
            let w = match c.diff_option {
                CellDiffOption::ForcedWidth(w) => w.get(),
                _ => 0,
            };
            (c.symbol().to_string(), w)
        })
        .collect()
}

#[test]
fn a_products_page_is_a_hyperlink_and_a_hostile_one_is_only_text() {
    let fx = shop_fixture();
    let mut a = app(&fx, false);
    let id = a.current_id().unwrap();
    let link = a.product(id).unwrap().link.clone();
    assert!(
        link.starts_with("https://"),
        "the fixture's products have pages: {link:?}"
    );
    let t = draw(&mut a, 110, 34);
    let cells = link_cells(&t);
    assert_eq!(cells.len(), 1, "{cells:?}");
    let (symbol, width) = &cells[0];
    let shown = lookbook::text::truncate(&link, 200);
    assert!(
        symbol.starts_with(&format!("\u{1b}]8;;{link}\u{1b}\\")) && symbol.ends_with("\u{1b}]8;;\u{1b}\\"),
        "{symbol:?}"
    );
    let text = &symbol[link.len() + 7..symbol.len() - 7];
    assert!(
        shown.starts_with(text.trim_end_matches('…')),
        "{text:?} is the link as shown"
    );
    assert_eq!(
        *width as usize,
        lookbook::text::width(text),
        "the diff skips exactly the covered cells"
    );
    // Nothing else in the frame carries an escape.
    let others: Vec<String> = unsafe_cells(&t).into_iter().filter(|c| c != symbol).collect();
    assert!(others.is_empty(), "{others:?}");

    // A link that would end the sequence early (or is not a web page) is drawn as safe text.
    for evil in ["https://x.example/\u{1b}]8;;\u{1b}\\\u{1b}[2J", "javascript:alert(1)"] {
        {
            let conn = rusqlite::Connection::open(&fx.db).unwrap();
            conn.execute("UPDATE products SET link = ?1", [evil]).unwrap();
        }
        let mut a = app(&fx, false);
        let t = draw(&mut a, 110, 34);
        assert!(link_cells(&t).is_empty(), "{evil:?} was linked");
        assert!(unsafe_cells(&t).is_empty(), "{:?}", unsafe_cells(&t));
        assert!(screen(&t).contains("x.example") || screen(&t).contains("javascript"));
    }
}

#[test]
fn a_shops_catalogue_filters_by_brand_price_and_stock_in_the_picker() {
    let fx = shop_fixture();
    let in_stock = Catalog::open_existing(&fx.db)
        .unwrap()
        .products()
        .unwrap()
        .iter()
        .filter(|p| p.in_stock())
        .count();
    let mut a = app(&fx, false);
    let all = a.row_count(Tab::Browse);
    assert!(in_stock < all, "the fixture has products out of stock");
    key(&mut a, KeyCode::Char('f'));
    let Mode::Filters(p) = &a.mode else {
        panic!("filters did not open")
    };
    use super::app::filters::Field;
    assert_eq!(
        p.fields,
        vec![
            Field::Category,
            Field::Gender,
            Field::Colour,
            Field::Brand,
            Field::Price,
            Field::Stock
        ]
    );
    // To the stock column, "in stock", apply.
    for _ in 0..5 {
        key(&mut a, KeyCode::Tab);
    }
    key(&mut a, KeyCode::Char('j'));
    key(&mut a, KeyCode::Enter);
    assert!(a.filter.in_stock, "{:?}", a.filter);
    assert_eq!(a.row_count(Tab::Browse), in_stock);
    let s = screen(&draw(&mut a, 110, 34));
    assert!(s.contains("in stock"), "the list says what is filtered");
    // The price column: the first band keeps only products up to its price.
    key(&mut a, KeyCode::Char('f'));
    for _ in 0..4 {
        key(&mut a, KeyCode::Tab);
    }
    key(&mut a, KeyCode::Char('j'));
    key(&mut a, KeyCode::Enter);
    let hi = a.filter.max_price.expect("a price band");
    assert!(a.filter.in_stock, "the stock pick is kept");
    for row in 0..a.row_count(Tab::Browse) {
        let id = a.row_id(Tab::Browse, row).unwrap();
        assert!(a.product(id).unwrap().price.unwrap() <= hi);
    }
}

/// Serves `body` as `image/jpeg` for any path on a loopback port, for at most `n` requests
/// or 60 s; the paths asked for come back through the handle.
fn photo_server(body: Vec<u8>, n: usize) -> (u16, std::thread::JoinHandle<Vec<String>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let handle = std::thread::spawn(move || {
        let end = std::time::Instant::now() + Duration::from_secs(60);
        let mut asked = Vec::new();
        while asked.len() < n && std::time::Instant::now() < end {
            let Ok((conn, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            conn.set_nonblocking(false).unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            asked.push(line.split_whitespace().nth(1).unwrap_or("").to_string());
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let mut conn = conn;
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: image/jpeg\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            conn.write_all(head.as_bytes()).unwrap();
            conn.write_all(&body).unwrap();
        }
        asked
    });
    (port, handle)
}

#[test]
fn a_photo_gone_from_the_cache_is_downloaded_again_off_the_ui_thread() {
    let fx = shop_fixture();
    let shop = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/shop");
    let photo = std::fs::read(shop.join("cdn/images/32/24832-main.jpg")).unwrap();
    let (port, server) = photo_server(photo, 1);
    let url = format!("http://127.0.0.1:{port}/images/32/24832-main.jpg");
    {
        // The catalogue as if its photos came by URL and the cache was then cleared: every
        // product's photo is at a path that is not there.
        let conn = rusqlite::Connection::open(&fx.db).unwrap();
        conn.execute("UPDATE products SET image_path = 'gone/' || image_path", [])
            .unwrap();
        conn.execute("UPDATE products SET image_url = ?1 WHERE shop_id = '24832-BLU'", [&url])
            .unwrap();
    }
    // The shop allowed its loopback CDN when it imported (`--allow-hosts`), which the app keeps to.
    let cache = lookbook::ingest::shop::photo_cache_dir(&Catalog::open_existing(&fx.db).unwrap());
    std::fs::create_dir_all(&cache).unwrap();
    lookbook::ingest::hosts::HostPolicy::parse(&[format!("127.0.0.1:{port}")])
        .unwrap()
        .save(&cache)
        .unwrap();
    let mut a = app(&fx, true);
    let id = a.current_id().unwrap();
    assert_eq!(
        a.product(id).unwrap().shop_id.as_deref(),
        Some("24832-BLU"),
        "the fixture's first product"
    );
    let _ = draw(&mut a, 110, 34);
    let ready: Vec<super::jobs::ImageKey> = a.pictures.ready.iter().map(|(k, _)| *k).collect();
    assert!(
        ready.iter().any(|k| k.id == id),
        "the photo was downloaded and drawn: {:?}",
        a.pictures.errors
    );
    let cache = lookbook::ingest::shop::photo_cache_dir(&Catalog::open_existing(&fx.db).unwrap());
    assert!(
        cache.join(lookbook::ingest::fetch::Cache::name(&url)).is_file(),
        "kept in the cache"
    );
    assert_eq!(server.join().unwrap(), vec!["/images/32/24832-main.jpg".to_string()]);
    // A product with neither the file nor a URL says its photo is missing.
    {
        let conn = rusqlite::Connection::open(&fx.db).unwrap();
        conn.execute("UPDATE products SET image_url = ''", []).unwrap();
    }
    let mut a = app(&fx, true);
    let _ = draw(&mut a, 110, 34);
    let id = a.current_id().unwrap();
    assert!(a.pictures.errors.keys().any(|k| k.id == id), "{:?}", a.pictures.errors);
}

#[test]
fn a_newcomers_feed_says_what_sells_now_when_the_shop_has_sales() {
    // Without a history the feed is the catalogue's typical products ("starter picks"); with
    // one, a newcomer sees what sells now, and the title says so.
    let fx = fixture(true);
    let mut a = app(&fx, false);
    a.update(Action::Tab(2));
    assert!(screen(&draw(&mut a, 110, 34)).contains("starter picks"));
    let ids: Vec<i64> = Catalog::open_existing(&fx.db)
        .unwrap()
        .products()
        .unwrap()
        .iter()
        .map(|p| p.id)
        .collect();
    let mut csv = String::from("t_dat,customer_id,article_id,price,sales_channel_id\n");
    for s in 0..8 {
        csv.push_str(&format!("2024-01-0{},s{s},{},0.02,2\n", 1 + s % 5, ids[s % 3]));
    }
    let file = fx.db.with_file_name("transactions.csv");
    std::fs::write(&file, csv).unwrap();
    let mut cat = Catalog::open_existing(&fx.db).unwrap();
    lookbook::ingest::interactions::import(&mut cat, &file, &lookbook::NoProgress).unwrap();
    let mut b = app(&fx, false);
    b.update(Action::Tab(2));
    let text = screen(&draw(&mut b, 110, 34));
    assert!(text.contains("what sells now"), "{text}");
}
