using MLNetQuant.Core;
using static TorchSharp.torch;

namespace MLNetQuant.Export;

/// <summary>GPTQ (Frantar et al., 2023) for block-wise int4 weights: quantizes a [N, K] weight one input column at a time
/// and spreads each column's rounding error over the columns not yet quantized, weighted by the inverse of
/// H = Σ xᵀx over calibration inputs, so the layer's output — not its weights — stays close to float. Without act-order
/// (columns in their own order, so blocks stay contiguous for MatMulNBits); each block's grid is fitted when the
/// block's first column comes up, from the weights as updated so far.</summary>
internal static class Gptq
{
    // Dampening added to H's diagonal, as a fraction of its mean: keeps the Cholesky factorisation well conditioned
    // (GPTQ's default).
    private const double Damping = 0.01;

    /// <summary>Quantizes <paramref name="weight"/> (row-major [N, K]: row n holds output n's K weights) with
    /// <paramref name="hessian"/> (float64 [K, K]).</summary>
    public static Int4Blocks Quantize(float[] weight, int n, int k, Tensor hessian, int blockSize, bool symmetric)
    {
        using var scope = NewDisposeScope();
        var h = hessian.clone();
        // Inputs that are always zero carry no information: their weights become 0 and H gets a unit diagonal there.
        var dead = h.diagonal().eq(0);
        h.add_(diag(dead.to(ScalarType.Float64)), CachedScalars.One);
        var w = tensor(weight, new long[] { n, k });
        w.masked_fill_(dead.unsqueeze(0), 0f);
        var diagonal = h.diagonal(); // a view: adding to it adds to H
        diagonal.add_(diagonal.mean().mul(CachedScalars.Of(Damping)), CachedScalars.One);
        // The upper Cholesky factor of H⁻¹: row i holds how column i's error moves the later columns.
        var inverse = cholesky_inverse(linalg.cholesky(h));
        var upper = linalg.cholesky(inverse).t().contiguous().to(ScalarType.Float32);
        var u = upper.data<float>().ToArray();

        var blocks = new Int4Blocks(n, k, blockSize, padToBlock: true);
        var column = new float[n];
        var errors = new float[n];
        for (var i = 0; i < k; i++)
        {
            if (i % blockSize == 0)
            {
                var (start, end) = blocks.Range(i / blockSize);
                var block = w.narrow(1, start, end - start).contiguous().data<float>().ToArray();
                for (var row = 0; row < n; row++)
                    blocks.FitGrid(row, i / blockSize, block.AsSpan(row * (end - start), end - start), symmetric);
            }
            w.select(1, i).contiguous().data<float>().CopyTo(column, 0);
            var pivot = u[(long)i * k + i];
            for (var row = 0; row < n; row++) errors[row] = (column[row] - blocks.Write(row, i, column[row])) / pivot;
            if (i + 1 == k) continue;
            using var step = NewDisposeScope();
            var later = upper[i].narrow(0, i + 1, k - i - 1);
            w.narrow(1, i + 1, k - i - 1).sub_(tensor(errors).unsqueeze(1).mul(later.unsqueeze(0)));
        }
        return blocks;
    }
}
