//! One page of a keyset-paginated listing, and the cut that makes it, for every listing
//! (users, clients, sessions, audit events).

/// A page of `T`: the items, and the cursor of the next page when there is one.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Names the last item shown; only given when a further item exists.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Cuts `rows`, fetched with `limit + 1` (the extra row only tells whether another page
    /// follows), to a page of at most `limit`.
    pub fn cut(mut rows: Vec<T>, limit: i64, cursor_of: impl Fn(&T) -> String) -> Page<T> {
        let limit = usize::try_from(limit).unwrap_or(0);
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = if more {
            rows.last().map(cursor_of)
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_is_given_only_when_a_further_row_exists() {
        let page = Page::cut(vec![1, 2, 3], 2, |n| n.to_string());
        assert_eq!(page.items, [1, 2]);
        assert_eq!(page.next_cursor.as_deref(), Some("2"));
        let last = Page::cut(vec![1, 2], 2, |n| n.to_string());
        assert_eq!(last.items, [1, 2]);
        assert_eq!(last.next_cursor, None);
        let none = Page::cut(vec![1], -1, |n| n.to_string());
        assert!(none.items.is_empty());
    }
}
