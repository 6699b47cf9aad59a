DROP TABLE feed_cursors;
DROP TABLE push_rejections;
DROP TABLE push_days;
