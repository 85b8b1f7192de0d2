"""kubetune_trainer: the program that runs inside kubetune's training and evaluation pods."""
