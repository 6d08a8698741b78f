import pytest
import torch

from cellbench.models.augment import augment_batch, flip, make_augment, rotate90


def batch(seed=0, shape=(6, 3, 16, 16)):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def test_shape_and_dtype_are_kept_and_input_untouched():
    x = batch()
    before = x.clone()
    y = augment_batch(x, torch.Generator().manual_seed(1))
    assert y.shape == x.shape and y.dtype == x.dtype
    assert torch.equal(x, before)


def test_same_generator_seed_gives_the_same_batch():
    x = batch()
    a = augment_batch(x, torch.Generator().manual_seed(7))
    b = augment_batch(x, torch.Generator().manual_seed(7))
    c = augment_batch(x, torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_four_quarter_turns_give_back_the_input():
    x = batch()
    turns = torch.tensor([0, 1, 2, 3, 1, 2])
    y = x
    for _ in range(4):
        y = rotate90(y, turns)
    assert torch.equal(y, x)
    assert torch.equal(rotate90(rotate90(x, turns), 4 - turns), x)


def test_a_quarter_turn_moves_the_corner_pixel():
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 0, 3] = 1  # top right
    y = rotate90(x, torch.tensor([1]))  # counter-clockwise: to top left
    assert y[0, 0, 0, 0] == 1 and y.sum() == 1


def test_flips_and_turns_only_permute_pixels():
    x = batch()
    y = augment_batch(x, torch.Generator().manual_seed(3), brightness=0.0, contrast=0.0)
    assert torch.equal(y.flatten(1).sort(dim=1).values, x.flatten(1).sort(dim=1).values)
    assert not torch.equal(y, x)


def test_flip_only_the_chosen_images():
    x = batch()
    y = flip(x, torch.tensor([True, False, True, False, False, False]), dim=-1)
    assert torch.equal(y[0], x[0].flip(-1)) and torch.equal(y[1], x[1])


def test_brightness_and_contrast_stay_in_range():
    x = batch()
    gen = torch.Generator().manual_seed(0)
    y = augment_batch(x, gen, flips=False, rotations=False, brightness=0.2, contrast=0.0)
    shift = (y - x).flatten(2)
    assert torch.allclose(shift, shift[:, :, :1].expand_as(shift), atol=1e-6)  # per channel
    assert shift.abs().max() <= 0.2 + 1e-6
    gen = torch.Generator().manual_seed(0)
    y = augment_batch(x, gen, flips=False, rotations=False, brightness=0.0, contrast=0.5)
    ratio = y.std(dim=(2, 3)) / x.std(dim=(2, 3))
    assert torch.all((ratio >= 0.5 - 1e-5) & (ratio <= 1.5 + 1e-5))
    assert torch.allclose(y.mean(dim=(2, 3)), x.mean(dim=(2, 3)), atol=1e-5)


def test_rotations_need_square_images():
    with pytest.raises(ValueError, match="square"):
        augment_batch(torch.zeros(2, 1, 8, 6), torch.Generator())
    y = make_augment(rotations=False)(torch.zeros(2, 1, 8, 6), torch.Generator())
    assert y.shape == (2, 1, 8, 6)
