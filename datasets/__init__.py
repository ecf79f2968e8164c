"""TFDS dataset builders of the zoo, installed as the `zoo.datasets` package.

One folder per dataset in the `tfds new` layout. Importing `zoo.data` registers
them with TFDS.
"""
