//! Elasticsearch writer (filled in by the Elasticsearch work).
