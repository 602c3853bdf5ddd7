SELECT name FROM priority_classes WHERE is_default
