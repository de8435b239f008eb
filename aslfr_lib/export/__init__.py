"""TFLite export: the only home of tf.* ops"""
