"""Training and evaluating the child-voice classifier (`bwv voice train|evaluate`)."""
