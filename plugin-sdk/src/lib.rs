//! Guest-side SDK for dealflow policy plugins (the WIT interface and export macro arrive with the policies issue).
