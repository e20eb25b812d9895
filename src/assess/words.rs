//! Flux condition reasons as words people read.

/// `HealthCheckFailed` → `health check failed`: a Flux reason in words.
pub fn reason_in_words(reason: &str) -> String {
    let mut words = String::with_capacity(reason.len() + 4);
    let chars: Vec<char> = reason.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if c.is_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if prev.is_lowercase() || prev.is_ascii_digit() || (prev.is_uppercase() && next_lower) {
                words.push(' ');
            }
        }
        words.extend(c.to_lowercase());
    }
    words
}

/// `reason in words: message`, the default status description; just the message when it
/// already starts with those words.
pub fn summary(reason: &str, message: &str) -> String {
    let words = reason_in_words(reason);
    let repeats = message
        .get(..words.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(&words));
    match (words.is_empty(), message.is_empty()) {
        (_, true) => words,
        (true, false) => message.to_string(),
        (false, false) if repeats => message.to_string(),
        (false, false) => format!("{words}: {message}"),
    }
}
