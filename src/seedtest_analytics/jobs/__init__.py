"""The commands' jobs along the data path: the features build, inactivity detection and
scoring, and the pipeline that runs both."""
