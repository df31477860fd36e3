//! Paging: what a list asks for and what it gets back, the same at every layer.

/// A requested page: zero-based index and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// Zero-based page number.
    pub index: u32,
    /// Items per page, at least 1.
    pub size: u32,
}

/// One page of results and the total count over all pages.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items on this page.
    pub items: Vec<T>,
    /// How many items match in all.
    pub total: i64,
}
