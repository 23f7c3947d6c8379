"""Request logging for the model server: TF Serving's `logging_config`, made to write.

config.py parses settings, logger.py samples and writes on its own thread, tfrecord.py frames
records, reader.py reads them back (skipping torn tails). Nothing here imports Beamline.
"""
