using MLNetQuant.Core;
using MLNetQuant.Graph;
using Onnx;
using static TorchSharp.torch;

namespace MLNetQuant.OnnxPtq;

/// <summary>AdaRound's per-layer optimization (<see cref="AdaRoundOptions"/>): the weight on its grid is
/// s · clamp(⌊W/s⌋ + h(V), qmin, qmax) with h the rectified sigmoid clamp(σ(V)(ζ − γ) + γ, 0, 1); V is trained with Adam to
/// minimize ‖op(x, W) − op(x, Ŵ)‖² (summed over the output channels, averaged over rows and positions) plus
/// λ Σ (1 − |2h − 1|^β), β annealed from 20 to 2 after a warm-up, which pushes every h to 0 or 1; the result rounds up
/// where V ≥ 0. The layer's inputs are the float model's (the paper's symmetric form), so layers are independent.</summary>
internal static class AdaRound
{
    private const double Zeta = 1.1, Gamma = -0.1;

    /// <summary>The integer codes of <paramref name="node"/>'s weight, learned on <paramref name="inputs"/> (its data
    /// input over the calibration rows, batch first).</summary>
    public static int[] Round(NodeProto node, int opset, float[] weight, long[] shape, float[] scales, int axis, long qmin, long qmax,
        Tensor inputs, AdaRoundOptions options)
    {
        using var scope = NewDisposeScope();
        using var _ = enable_grad();
        var w = tensor(weight, shape);
        var scaleShape = Enumerable.Repeat(1L, shape.Length).ToArray();
        scaleShape[axis] = scales.Length;
        var s = tensor(scales).reshape(scaleShape);
        var scaled = w.div(s);
        var floor = scaled.floor();
        // Start where h(V) equals the fractional part: the float weight itself.
        var rest = scaled.sub(floor).clamp(CachedScalars.Of(0.01), CachedScalars.Of(0.99));
        var v = new TorchSharp.Modules.Parameter(rest.sub(CachedScalars.Of(Gamma)).reciprocal().mul(CachedScalars.Of(Zeta - Gamma))
            .sub(CachedScalars.Of(1)).log().neg().detach());
        using var adam = optim.Adam(new[] { v }, options.LearningRate);
        var random = new Random(options.Seed);
        var rows = inputs.shape[0];
        var batch = Math.Min(options.BatchSize, rows);
        var warmUp = (int)(options.Iterations * options.WarmUp);
        var channelAxis = node.OpType is "Conv" or "ConvTranspose" ? 1L : -1L;
        for (var step = 0; step < options.Iterations; step++)
        {
            using var stepScope = NewDisposeScope();
            var pick = tensor(Enumerable.Range(0, (int)batch).Select(_ => (long)random.Next((int)rows)).ToArray());
            var x = inputs.index_select(0, pick);
            Tensor target;
            using (no_grad()) target = OnnxOps.Run(node, new Tensor?[] { x, w }, opset)[0];
            var h = Rectified(v);
            var quantized = floor.add(h, CachedScalars.One).clamp(CachedScalars.Of(qmin), CachedScalars.Of(qmax)).mul(s);
            var output = OnnxOps.Run(node, new Tensor?[] { x, quantized }, opset)[0];
            var loss = output.sub(target).pow(CachedScalars.Of(2)).sum(new[] { channelAxis }).mean();
            if (step >= warmUp && options.Regularization > 0)
            {
                // β from 20 down to 2 over the regularized steps.
                var progress = (double)(step - warmUp) / Math.Max(1, options.Iterations - warmUp);
                var beta = tensor(20 - 18 * progress);
                var regularizer = h.mul(CachedScalars.Of(2)).sub(CachedScalars.Of(1)).abs().pow(beta).neg().add(CachedScalars.Of(1), CachedScalars.One).sum();
                loss = loss.add(regularizer.mul(CachedScalars.Of(options.Regularization)), CachedScalars.One);
            }
            adam.zero_grad();
            loss.backward();
            adam.step();
        }
        using (no_grad())
        {
            var up = v.ge(CachedScalars.Of(0)).to_type(ScalarType.Float32);
            var codes = floor.add(up, CachedScalars.One).clamp(CachedScalars.Of(qmin), CachedScalars.Of(qmax));
            return codes.to_type(ScalarType.Int32).data<int>().ToArray();
        }
    }

    private static Tensor Rectified(Tensor v) =>
        v.sigmoid().mul(CachedScalars.Of(Zeta - Gamma)).add(CachedScalars.Of(Gamma), CachedScalars.One).clamp(CachedScalars.Of(0), CachedScalars.Of(1));
}
