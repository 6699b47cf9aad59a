DROP TABLE support_measure_subjects;
