//! `named_enum!`: an enum whose variants each have one fixed name (an audit event type, a
//! `grant_type` value), declared as one list so that a variant cannot come without its name
//! or be missing from `ALL`.

/// Declares the enum, `ALL` (every variant, in the order written) and `as_str` (the name).
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $( $(#[$variant_meta])* $variant, )+
        }

        impl $name {
            /// Every variant, in the order declared.
            pub const ALL: [$name; [$($text),+].len()] = [$($name::$variant),+];

            /// The variant's name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
        }
    };
}

pub(crate) use named_enum;
