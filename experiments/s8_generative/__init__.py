"""Section 8: generative and similarity models. One module per task; declarations only (cheap to import)."""
from experiments.registry import task

task("8.1", "GAN on MNIST", "t8_1_gan", datasets=("mnist",),
     headline="Fréchet distance {frechet_distance:.2f} (real vs real {frechet_floor:.2f}); "
              "class histogram {tv_from_uniform:.2f} from uniform (real images {real_tv_from_uniform:.2f})",
     metrics=("frechet_distance", "frechet_floor", "tv_from_uniform", "real_tv_from_uniform", "class_histogram",
              "diversity.ratio", "frechet_over_training", "sweep_frechet", "sweep_verdicts"),
     image_dataset=True, threads=1, uses=("4.3",))
task("8.2", "Siamese network", "t8_2_siamese", datasets=("mnist",),
     headline="unseen classes: one-shot {one_shot_accuracy[contrastive]:.1%} (contrastive), "
              "{one_shot_accuracy[triplet]:.1%} (triplet); {verdict}",
     metrics=("one_shot_accuracy.contrastive", "one_shot_accuracy.triplet", "pair_accuracy.contrastive",
              "pair_accuracy.triplet", "auc.contrastive", "auc.triplet", "verdict"),
     image_dataset=True, threads=1)
