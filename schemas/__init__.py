"""pandera (polars) models, one per source file. Checks sit next to the columns they guard; each Field's
description is the Japanese explanation shown to the person who has to fix the value."""
