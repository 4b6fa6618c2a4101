-- Whether the product's available stock is at or below its threshold: set when a LowStock
-- event was emitted for the crossing, cleared when stock is back above the threshold.
ALTER TABLE products ADD COLUMN low_stock boolean NOT NULL DEFAULT false;
