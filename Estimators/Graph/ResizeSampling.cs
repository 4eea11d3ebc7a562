namespace MLNetQuant.Graph;

/// <summary>ONNX Resize (opsets 13–21) as ONNX Runtime's CPU kernel computes it, axis by axis: the output shape (scales
/// or sizes over all axes or over the <c>axes</c> attribute's, <c>keep_aspect_ratio_policy</c>), the coordinate
/// transform with the scale ONNX Runtime uses (the given scale, not output/input), and for each output position the
/// input positions and weights that make it — one tap for nearest, two for linear, four for cubic, a stretched filter
/// for antialias. The TorchSharp executor gathers and weighs with them, so training sees the same function as
/// inference. All arithmetic is float32, as the kernel's, so ties of nearest rounding fall the same way.</summary>
internal static class ResizeSampling
{
    /// <summary>The taps of one output axis: <c>Indices[t][o]</c> is the input position tap t reads for output o, and
    /// <c>Weights[t][o]</c> its weight (null for nearest, whose single tap weighs 1).</summary>
    public sealed record Taps(long[][] Indices, float[][]? Weights);

    /// <summary>The output shape and, per axis, the scale the coordinate transform divides by.</summary>
    /// <param name="inputShape">The data input's shape.</param>
    /// <param name="scales">The scales input (one per axis, or per <paramref name="axes"/> entry), or null.</param>
    /// <param name="sizes">The sizes input (likewise), or null; used when given.</param>
    /// <param name="axes">The <c>axes</c> attribute (opset 18+), or null for all axes.</param>
    /// <param name="policy"><c>keep_aspect_ratio_policy</c>: stretch, not_larger or not_smaller (sizes only).</param>
    /// <param name="refuse">Makes the exception that names the node.</param>
    public static (long[] OutputShape, float[] Scales) Geometry(long[] inputShape, float[]? scales, long[]? sizes, long[]? axes,
        string policy, Func<string, Exception> refuse)
    {
        var rank = inputShape.Length;
        var listed = axes?.Select(a => (int)(a < 0 ? a + rank : a)).ToArray() ?? Enumerable.Range(0, rank).ToArray();
        if (listed.Any(a => a < 0 || a >= rank) || listed.Distinct().Count() != listed.Length)
            throw refuse($"axes [{string.Join(", ", axes!)}] do not name distinct axes of a rank-{rank} input");
        var given = sizes is not null ? sizes.Length : scales?.Length ?? 0;
        if (given == 0) throw refuse("neither scales nor sizes are given");
        if (given != listed.Length) throw refuse($"{(sizes is not null ? "sizes" : "scales")} has {given} values for {listed.Length} axes");
        var outputShape = (long[])inputShape.Clone();
        var axisScales = Enumerable.Repeat(1f, rank).ToArray();
        if (sizes is null)
        {
            for (var i = 0; i < listed.Length; i++)
            {
                var axis = listed[i];
                if (!(scales![i] > 0)) throw refuse($"scale {scales[i]} for axis {axis} is not positive");
                axisScales[axis] = scales[i];
                outputShape[axis] = (long)(scales[i] * inputShape[axis]);
            }
            return (outputShape, axisScales);
        }
        if (policy == "stretch")
        {
            for (var i = 0; i < listed.Length; i++)
            {
                var axis = listed[i];
                outputShape[axis] = sizes[i];
                axisScales[axis] = (float)sizes[i] / inputShape[axis];
            }
            return (outputShape, axisScales);
        }
        if (policy is not ("not_larger" or "not_smaller")) throw refuse($"keep_aspect_ratio_policy {policy}");
        // One scale for every listed axis, the one that keeps the result inside (not_larger) or around (not_smaller) sizes.
        var ratios = listed.Select((axis, i) => (float)sizes[i] / inputShape[axis]).ToArray();
        var common = policy == "not_larger" ? ratios.Min() : ratios.Max();
        foreach (var axis in listed)
        {
            axisScales[axis] = common;
            outputShape[axis] = (long)MathF.Round(common * inputShape[axis], MidpointRounding.AwayFromZero);
        }
        return (outputShape, axisScales);
    }

    /// <summary>The taps of one axis resized from <paramref name="input"/> to <paramref name="output"/> positions.</summary>
    public static Taps For(long input, long output, float scale, ResizeMode mode, Func<string, Exception> refuse)
    {
        var coordinates = new float[output];
        for (var o = 0; o < output; o++) coordinates[o] = OriginalCoordinate(o, scale, input, output, mode.Transform, refuse);
        return mode.Interpolation switch
        {
            "nearest" => Nearest(coordinates, input, mode.NearestRounding, refuse),
            "linear" or "cubic" when mode.Antialias => Filtered(coordinates, input, scale, mode),
            "linear" => Linear(coordinates, input),
            "cubic" => Cubic(coordinates, input, mode),
            _ => throw refuse($"resize mode {mode.Interpolation}"),
        };
    }

    // x_original of output position x, as ONNX Runtime's GetOriginalCoordinateFromResizedCoordinate computes it.
    private static float OriginalCoordinate(float x, float scale, long input, long output, string transform, Func<string, Exception> refuse) => transform switch
    {
        "half_pixel" => (x + 0.5f) / scale - 0.5f,
        "pytorch_half_pixel" => output > 1 ? (x + 0.5f) / scale - 0.5f : 0f,
        "align_corners" => output == 1 ? 0f : x * (input - 1) / (output - 1),
        "asymmetric" => x / scale,
        "tf_half_pixel_for_nn" => (x + 0.5f) / scale,
        "half_pixel_symmetric" => HalfPixelSymmetric(x, scale, input, output),
        _ => throw refuse($"coordinate_transformation_mode {transform}"),
    };

    private static float HalfPixelSymmetric(float x, float scale, long input, long output)
    {
        var adjustment = output / (scale * input);
        var center = input / 2f;
        var offset = center * (1 - adjustment);
        return offset + (x + 0.5f) / scale - 0.5f;
    }

    private static Taps Nearest(float[] coordinates, long input, string rounding, Func<string, Exception> refuse)
    {
        var indices = new long[coordinates.Length];
        for (var o = 0; o < coordinates.Length; o++)
        {
            var x = coordinates[o];
            var rounded = rounding switch
            {
                "round_prefer_floor" => x == MathF.Floor(x) + 0.5f ? MathF.Floor(x) : MathF.Round(x),
                "round_prefer_ceil" => x == MathF.Floor(x) + 0.5f ? MathF.Ceiling(x) : MathF.Round(x),
                "floor" => MathF.Floor(x),
                "ceil" => MathF.Ceiling(x),
                _ => throw refuse($"nearest_mode {rounding}"),
            };
            indices[o] = Math.Clamp((long)rounded, 0, input - 1);
        }
        return new Taps(new[] { indices }, null);
    }

    // Two taps around the clamped coordinate; at the last position both read it (ONNX Runtime's bilinear set-up).
    private static Taps Linear(float[] coordinates, long input)
    {
        var taps = Empty(2, coordinates.Length);
        for (var o = 0; o < coordinates.Length; o++)
        {
            var x = Math.Clamp(coordinates[o], 0f, input - 1);
            var left = Math.Min((long)x, input - 1);
            var right = Math.Min(left + 1, input - 1);
            var (wLeft, wRight) = left == right ? (0.5f, 0.5f) : (right - x, x - left);
            Set(taps, 0, o, left, wLeft);
            Set(taps, 1, o, right, wRight);
        }
        return taps;
    }

    // Four taps at floor(x) − 1 … floor(x) + 2 with Keys' cubic weights; outside positions read the edge or, with
    // exclude_outside, weigh nothing and the rest are renormalised.
    private static Taps Cubic(float[] coordinates, long input, ResizeMode mode)
    {
        var taps = Empty(4, coordinates.Length);
        var a = mode.CubicCoefficient;
        for (var o = 0; o < coordinates.Length; o++)
        {
            var x = coordinates[o];
            var floor = (long)MathF.Floor(x);
            var s = x - floor;
            var weights = new[]
            {
                ((a * (s + 1) - 5 * a) * (s + 1) + 8 * a) * (s + 1) - 4 * a,
                ((a + 2) * s - (a + 3)) * s * s + 1,
                ((a + 2) * (1 - s) - (a + 3)) * (1 - s) * (1 - s) + 1,
                ((a * (2 - s) - 5 * a) * (2 - s) + 8 * a) * (2 - s) - 4 * a,
            };
            var total = 0f;
            for (var t = 0; t < 4; t++)
            {
                var position = floor - 1 + t;
                if (mode.ExcludeOutside && (position < 0 || position >= input)) weights[t] = 0;
                total += weights[t];
            }
            for (var t = 0; t < 4; t++)
                Set(taps, t, o, Math.Clamp(floor - 1 + t, 0, input - 1), mode.ExcludeOutside ? weights[t] / total : weights[t]);
        }
        return taps;
    }

    // Antialias (ONNX Runtime after Pillow): the filter, stretched by 1/scale when shrinking, over a window of
    // ceil(support)·2 + 1 positions, weights divided by their sum; positions outside the input read its edge, or with
    // exclude_outside are left out.
    private static Taps Filtered(float[] coordinates, long input, float scale, ResizeMode mode)
    {
        var half = mode.Interpolation == "linear" ? 1f : 2f;
        var inverseScale = 1f / scale;
        var support = inverseScale >= 1f ? half * inverseScale : half;
        var filterScale = inverseScale >= 1f ? 1f / inverseScale : 1f;
        var window = (long)MathF.Ceiling(support) * 2 + 1;
        var taps = Empty((int)window, coordinates.Length);
        for (var o = 0; o < coordinates.Length; o++)
        {
            var center = 0.5f + (scale == 1f ? o : coordinates[o]);
            var first = (long)MathF.Floor(center - support + 0.5f);
            var end = first + Math.Clamp((long)MathF.Floor(center + support + 0.5f) - first, 0, window);
            if (mode.ExcludeOutside) (first, end) = (Math.Clamp(first, 0, input), Math.Clamp(end, 0, input));
            var count = (int)(end - first);
            var weights = new float[count];
            var total = 0f;
            for (var t = 0; t < count; t++) total += weights[t] = Filter((first + t - center + 0.5f) * filterScale, mode);
            var normaliser = total == 0f ? 1f : 1f / total;
            for (var t = 0; t < count; t++) Set(taps, t, o, Math.Clamp(first + t, 0, input - 1), weights[t] * normaliser);
            // Unused taps keep position 0 and weight 0.
        }
        return taps;
    }

    private static float Filter(float x, ResizeMode mode)
    {
        x = MathF.Abs(x);
        if (mode.Interpolation == "linear") return Math.Max(1 - x, 0);
        var a = mode.CubicCoefficient;
        if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
        if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
        return 0;
    }

    private static Taps Empty(int count, int output) => new(
        Enumerable.Range(0, count).Select(_ => new long[output]).ToArray(),
        Enumerable.Range(0, count).Select(_ => new float[output]).ToArray());

    private static void Set(Taps taps, int tap, int output, long index, float weight)
    {
        taps.Indices[tap][output] = index;
        taps.Weights![tap][output] = weight;
    }
}
