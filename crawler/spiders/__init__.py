"""One module per exchange: pure parse functions and thin spiders that navigate."""
