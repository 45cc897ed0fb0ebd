"""The control process's parts: for now, the status page's files (``webfiles``)."""
