//! The product list's state: the selected and the first visible row of each tab (drawn by
//! `ui::list`).

use super::Tab;

/// The list's state: the selected and the first visible row of each tab.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPane {
    /// Selected row per tab.
    pub selected: [usize; 4],
    /// First visible row per tab.
    pub offset: [usize; 4],
}

impl ListPane {
    /// Selects `row` of `tab` (clamped to its `n` rows).
    pub fn select(&mut self, tab: Tab, row: isize, n: usize) {
        self.selected[tab.index()] = if n == 0 {
            0
        } else {
            row.clamp(0, n as isize - 1) as usize
        };
    }

    /// Keeps each tab's selection within its row count.
    pub fn clamp(&mut self, counts: [usize; 4]) {
        for (i, n) in counts.into_iter().enumerate() {
            if self.selected[i] >= n {
                self.selected[i] = n.saturating_sub(1);
            }
        }
    }

    /// Scrolls `tab` so its selection shows in `height` rows.
    pub fn scroll(&mut self, tab: Tab, height: usize) {
        let i = tab.index();
        let h = height.max(1);
        if self.selected[i] < self.offset[i] {
            self.offset[i] = self.selected[i];
        } else if self.selected[i] >= self.offset[i] + h {
            self.offset[i] = self.selected[i] + 1 - h;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_stays_within_the_rows_and_each_tab_keeps_its_own() {
        let mut l = ListPane::default();
        l.select(Tab::Browse, 7, 5);
        assert_eq!(l.selected[Tab::Browse.index()], 4);
        l.select(Tab::Browse, -3, 5);
        assert_eq!(l.selected[Tab::Browse.index()], 0);
        l.select(Tab::Liked, 2, 0);
        assert_eq!(l.selected[Tab::Liked.index()], 0);
        l.select(Tab::Similar, 3, 10);
        assert_eq!(l.selected, [0, 3, 0, 0]);
        // Rows went away (a like undone, a filter applied): selections come back inside.
        l.clamp([10, 2, 0, 0]);
        assert_eq!(l.selected, [0, 1, 0, 0]);
    }

    #[test]
    fn scrolling_follows_the_selection_a_page_at_a_time() {
        let mut l = ListPane::default();
        l.select(Tab::Browse, 12, 100);
        l.scroll(Tab::Browse, 10);
        assert_eq!(l.offset[0], 3, "the selection is the last visible row");
        l.select(Tab::Browse, 1, 100);
        l.scroll(Tab::Browse, 10);
        assert_eq!(l.offset[0], 1, "scrolled back up to the selection");
        l.select(Tab::Browse, 5, 100);
        l.scroll(Tab::Browse, 10);
        assert_eq!(l.offset[0], 1, "a visible selection does not scroll");
        l.scroll(Tab::Browse, 0);
        assert_eq!(l.offset[0], 5, "no room still shows the selection");
    }
}
