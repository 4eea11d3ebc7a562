using Microsoft.ML;
using Microsoft.ML.Data;
using MLNetQuant.Configuration;
using MLNetQuant.Samples.Shared;
using MLNetQuant.Training;

namespace MLNetQuant.Samples.ModelBuilderStyle;

/// <summary>Trains and saves the model, the way Model Builder's generated <c>ModelBuilder.CreateModel</c> does —
/// with MLNetQuant's QAT estimator as the trainer, so the saved model is int8.</summary>
public static class ModelBuilder
{
    /// <summary>Builds the pipeline, trains it on <paramref name="trainRows"/> rows, evaluates it with ML.NET's
    /// multiclass evaluator on <paramref name="testRows"/> rows and saves it (with the predicted key mapped back to
    /// the class name) to <paramref name="modelPath"/>.</summary>
    public static MulticlassClassificationMetrics TrainModel(string modelPath, int trainRows, int testRows, int epochs)
    {
        var ml = new MLContext(seed: 1);
        IDataView trainingData = ml.Data.LoadFromEnumerable(Load(train: true, trainRows));

        var pipeline = BuildTrainingPipeline(ml, epochs);
        var model = pipeline.Fit(trainingData);

        // Score, Label (key) and the key-typed PredictedLabel: what ML.NET's evaluator reads after any trainer.
        var test = ml.Data.LoadFromEnumerable(Load(train: false, testRows));
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(test));

        // As Model Builder does: the saved model maps the predicted key back to the class name.
        var withClassNames = model.Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel").Fit(model.Transform(trainingData)));
        ml.Model.Save(withClassNames, trainingData.Schema, modelPath);
        model.LastTransformer.Dispose();   // deletes the temporary .onnx file behind the ONNX session
        return metrics;
    }

    /// <summary>Label text → key (sorted, so classes are in alphabetical order), pixels → normalised Features, then
    /// quantization-aware training of the reference CNN from scratch; the QAT estimator adds Score and the
    /// key-typed PredictedLabel, as ML.NET's trainers do.</summary>
    public static EstimatorChain<QuantizedModelTransformer> BuildTrainingPipeline(MLContext ml, int epochs) =>
        ml.Transforms.Conversion.MapValueToKey("Label", keyOrdinality: Microsoft.ML.Transforms.ValueToKeyMappingEstimator.KeyOrdinality.ByValue)
            .Append(ml.Transforms.NormalizeMeanVariance("Features", "Pixels", fixZero: false))
            .Append(ml.Quantization().Qat(new QatOptions
            {
                ModelFactory = FashionNets.Cnn,
                InputShape = new long[] { 1, 28, 28 },
                Epochs = epochs,
                LearningRate = 0.01,
                Config = { new QuantConfig { QuantTypes = { QuantType.Weight, QuantType.Input }, QuantBits = 8, OpTypes = { "Conv2d", "Linear" } } },
            }));

    internal static IEnumerable<ModelInput> Load(bool train, int rows)
    {
        var (images, labels, _) = FashionMnist.Load(train, rows);
        return images.Select((pixels, i) => new ModelInput { Pixels = pixels, Label = FashionMnist.ClassNames[labels[i]] });
    }
}
