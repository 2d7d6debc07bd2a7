/**
 * recap: the CS231n image-captioning models (vanilla RNN, LSTM and GRU over image features,
 * and the course's Transformer captioner) with hand-written forward and backward passes, as a
 * Deno library and command-line tool.
 *
 * Every layer is a forward/backward pair with the exercise's argument order; forward
 * returns `[out, cache]`, backward returns the gradients by name. `CaptioningRNN` is the
 * exercise's model, `CaptioningTransformer` the course's, `CaptioningSolver` their training
 * loop (on a pool of Web Workers when asked), `runExperiment` runs a whole experiment file as
 * `deno task train` does.
 *
 * @example Check an RNN step's gradient the way the notebook does
 * ```ts
 * import {
 *   evalNumericalGradientArray, relError, rnnStepBackward, rnnStepForward, Tensor,
 * } from "./mod.ts";
 * const x = Tensor.randn([3, 10], 1), prevH = Tensor.randn([3, 4], 2);
 * const Wx = Tensor.randn([10, 4], 3), Wh = Tensor.randn([4, 4], 4), b = Tensor.randn([4], 5);
 * const [nextH, cache] = rnnStepForward(x, prevH, Wx, Wh, b);
 * const dnextH = Tensor.randn(nextH.shape, 6);
 * const { dx } = rnnStepBackward(dnextH, cache);
 * const numeric = evalNumericalGradientArray(() => rnnStepForward(x, prevH, Wx, Wh, b)[0], x, dnextH);
 * console.log(relError(numeric, dx)); // ~1e-10
 * ```
 * @module
 */

// Tensors and seeded randomness.
export { Tensor } from "./layers/tensor.ts";
export type { ArrayOf, DType, FloatArray, FloatDType } from "./layers/tensor.ts";
export { Rng } from "./layers/random.ts";
export type { RngState } from "./layers/random.ts";

// The exercise's layers: forward/backward pairs, and numeric gradient checks.
export { affineBackward, affineForward } from "./layers/affine.ts";
export type { AffineCache, AffineGrads } from "./layers/affine.ts";
export { rnnBackward, rnnForward, rnnStepBackward, rnnStepForward } from "./layers/rnn.ts";
export type { RnnCache, RnnGrads, RnnStepCache, RnnStepGrads } from "./layers/rnn.ts";
export { lstmBackward, lstmForward, lstmStepBackward, lstmStepForward } from "./layers/lstm.ts";
export type { LstmCache, LstmGrads, LstmStepCache, LstmStepGrads } from "./layers/lstm.ts";
export { gruBackward, gruForward, gruStepBackward, gruStepForward } from "./layers/gru.ts";
export type { GruCache, GruGrads, GruStepCache, GruStepGrads } from "./layers/gru.ts";
export { wordEmbeddingBackward, wordEmbeddingForward } from "./layers/word_embedding.ts";
export type { WordEmbeddingCache, WordEmbeddingGrads } from "./layers/word_embedding.ts";
export { temporalAffineBackward, temporalAffineForward } from "./layers/temporal_affine.ts";
export type { TemporalAffineCache } from "./layers/temporal_affine.ts";
export { temporalSoftmaxLoss } from "./layers/temporal_softmax_loss.ts";

// The Transformer's layers: forward/backward pairs too.
export {
  causalMask,
  multiHeadAttentionBackward,
  multiHeadAttentionForward,
} from "./layers/attention.ts";
export type {
  AttentionCache,
  AttentionGrads,
  AttentionOptions,
  AttentionParams,
} from "./layers/attention.ts";
export { layerNormBackward, layerNormForward } from "./layers/layer_norm.ts";
export type { LayerNormCache, LayerNormGrads } from "./layers/layer_norm.ts";
export { feedForwardBackward, feedForwardForward } from "./layers/feed_forward.ts";
export type {
  FeedForwardCache,
  FeedForwardGrads,
  FeedForwardWeights,
  FeedForwardWork,
} from "./layers/feed_forward.ts";
export {
  positionalEncoding,
  positionalEncodingBackward,
  positionalEncodingForward,
} from "./layers/positional_encoding.ts";
export type { PositionalEncodingCache } from "./layers/positional_encoding.ts";
export { dropoutBackward, dropoutForward } from "./layers/dropout.ts";
export type { DropoutCache, DropoutOptions } from "./layers/dropout.ts";
export { sigmoid } from "./layers/activations.ts";
export type { Activation } from "./layers/activations.ts";
export {
  evalNumericalGradient,
  evalNumericalGradientArray,
  relError,
} from "./layers/gradient_check.ts";

// The update rules (the exercise's optim.py).
export {
  applyUpdate,
  OPTIM_HYPERPARAMS,
  optimDefaults,
  Optimizer,
  UPDATE_RULES,
} from "./layers/optim.ts";
export type { OptimConfig, OptimHyperParam, OptimizerState, UpdateRule } from "./layers/optim.ts";

// Compute backends: the kernels every layer multiplies with.
export { availableBackends, describeKernels, selectKernels } from "./layers/kernels/mod.ts";
export type { BackendName, Kernels } from "./layers/kernels/mod.ts";

// The captioning models: loss and gradients, decoding, the parameter layout.
export type {
  CaptioningModel,
  CaptioningModelConfig,
  ModelKind,
} from "./model/captioning_model.ts";
export { createCaptioningModel, MODEL_KINDS } from "./model/models.ts";
export type { CaptioningModelOptions } from "./model/models.ts";
export { CaptioningModelBase } from "./model/captioning_base.ts";
export { CaptioningRNN } from "./model/captioning_rnn.ts";
export type {
  CaptioningRNNOptions,
  CellType,
  LossOptions,
  LossResult,
  ModelConfig,
} from "./model/captioning_rnn.ts";
export { CaptioningTransformer } from "./model/captioning_transformer.ts";
export type {
  CaptioningTransformerOptions,
  TransformerConfig,
} from "./model/captioning_transformer.ts";
export { TransformerDecoder } from "./model/transformer_decoder.ts";
export type { TransformerDecoderModel } from "./model/transformer_decoder.ts";
export type { Minibatch } from "./model/minibatch.ts";
export { SAMPLE_CHUNK, sampleCaptions } from "./model/sampling.ts";
export { DECODE_LIMITS, resolveDecodeOptions } from "./model/decode_options.ts";
export type { DecodeOptions } from "./model/decode_options.ts";
export type {
  DecodeMethod,
  LengthPenalty,
  SampleOptions,
  SampleResult,
  SamplingModel,
} from "./model/sampling.ts";
export { Decoder } from "./model/decoder.ts";
export type { DecodedModel, DecoderModel, StepDecoder } from "./model/decoder.ts";
export { decodeCaptions } from "./model/decode.ts";
export { GRU_PARAM_NAMES, PARAM_NAMES } from "./model/params.ts";
export { gemmTiles, SOLO_TEAM, TEAM_TASKS, teamUnitWidth, TILE_FLOPS } from "./model/step_team.ts";
export type { GemmTiles } from "./model/step_team.ts";
export type { StepTeam } from "./model/step_team.ts";
export { sharedWorkspaceMemory } from "./layers/kernels/elementwise_wasm.ts";
export { sharedWasmArray, wasmMemoryOf } from "./layers/kernels/wasm_arrays.ts";
export type { ParamLayout, ParamName, ParamSlot, RecurrentParamName } from "./model/params.ts";

// Training engines: one thread, or a pool of Web Workers; the same bits either way.
export { createEngine, PoolEngine, stepSplit } from "./workers/pool.ts";
export type { EngineOptions, PoolOptions } from "./workers/pool.ts";
export { LocalEngine } from "./workers/engine.ts";
export { SharedTeam, TeamAborted } from "./workers/team_barrier.ts";
export type {
  GradientEngine,
  GradientsOptions,
  IncomingSum,
  RunningSum,
  StepResult,
  TrainEngine,
} from "./workers/engine.ts";
export type { Range } from "./workers/sharding.ts";

// Across processes: MPI (MPICH through Deno.dlopen), a step's shards chained rank to rank.
export {
  bitsChecksum,
  DistributedEngine,
  RankDriftError,
  rankShards,
  sampleOverRanks,
  shardRows,
} from "./workers/distributed_engine.ts";
export type { DistributedEngineOptions } from "./workers/distributed_engine.ts";
export { MpiCommunicator } from "./workers/mpi/communicator.ts";
export type { Communicator, MpiBuffer, MpiRequest } from "./workers/mpi/communicator.ts";
export { detectLaunch, openJob } from "./pipeline/run/job.ts";
export type { Job, Launch } from "./pipeline/run/job.ts";

// Data: the exercise's dictionary, the COCO files, streaming, the synthetic dataset.
export {
  gatherMinibatch,
  requireSplits,
  splitOf,
  SPLITS,
  splitsOf,
} from "./pipeline/data/caption_data.ts";
export type {
  CaptionData,
  ImageId,
  LoadedCaptionData,
  Split,
  SplitData,
  SubsetSplitInfo,
} from "./pipeline/data/caption_data.ts";
export { loadCocoData, sampleCocoMinibatch } from "./pipeline/data/coco.ts";
export type { LoadCocoOptions } from "./pipeline/data/coco.ts";
export { loadCocoForStreaming } from "./pipeline/data/coco_subset.ts";
export type { LoadCocoSubsetOptions } from "./pipeline/data/coco_subset.ts";
export { InMemoryBatches } from "./pipeline/data/batches.ts";
export type { BatchSource } from "./pipeline/data/batches.ts";
export { StreamBatches } from "./pipeline/data/stream/stream_batches.ts";
export type { StreamOptions } from "./pipeline/data/stream/coco_stream.ts";
export { writeSyntheticDataset } from "./pipeline/data/synth/writer.ts";
export type { SynthOptions, SynthSummary } from "./pipeline/data/synth/writer.ts";
export type { NoiseOptions } from "./pipeline/data/synth/features.ts";

// Your own data: import a captioning dataset and its features; captions and scores as files.
export { formatImportSummary, importDataset } from "./pipeline/data/import/import_dataset.ts";
export type {
  ImportOptions,
  ImportSummary,
  SplitSummary,
} from "./pipeline/data/import/import_dataset.ts";
export { openFeatures } from "./pipeline/data/features/feature_source.ts";
export type {
  FeatureSource,
  OpenFeaturesOptions,
} from "./pipeline/data/features/feature_source.ts";
export {
  datasetLayout,
  findDatasetFormat,
  MANIFEST_FORMAT,
} from "./pipeline/data/dataset_layout.ts";
export type {
  DatasetFormat,
  DatasetLayout,
  DatasetManifest,
  ManifestSplit,
} from "./pipeline/data/dataset_layout.ts";
export {
  evaluationScores,
  readResults,
  scoreResults,
  writeResults,
  writeScores,
} from "./pipeline/eval/results.ts";
export type {
  CaptionResult,
  ImageScores,
  ScoredSet,
  ScoreResultsOptions,
  ScoresFile,
} from "./pipeline/eval/results.ts";
export { scoreCaptions } from "./pipeline/eval/metrics/per_image.ts";
export type { ScoredCaptions } from "./pipeline/eval/metrics/per_image.ts";

// Training: the solver and its checkpoints.
export { CaptioningSolver, TrainingDivergedError } from "./pipeline/train/solver.ts";
export type {
  EpochInfo,
  IterationInfo,
  SolverOptions,
  SolverState,
  ValLossPoint,
} from "./pipeline/train/solver.ts";
export { loadCheckpoint, saveCheckpoint } from "./pipeline/train/checkpoint.ts";
export type {
  CheckpointExpectation,
  CheckpointExtras,
  LoadedCheckpoint,
  ScstPhase,
} from "./pipeline/train/checkpoint.ts";

// Evaluation: a split's captions beside the baseline, and the COCO metrics.
export { evaluateSplit } from "./pipeline/eval/evaluate.ts";
export type {
  CaptionedImage,
  Captioner,
  DecoderName,
  DecodingControls,
  EvaluateOptions,
  SplitEvaluation,
} from "./pipeline/eval/evaluate.ts";
export {
  captionDiagnostics,
  ciderD,
  CiderDScorer,
  corpusBleu,
  documentFrequencies,
  evaluateCaptions,
  mostFrequentCaptionBaseline,
  rougeL,
  rougeLScore,
  unigramBleu,
} from "./pipeline/eval/metrics/mod.ts";
export type {
  BleuScores,
  CaptionDiagnostics,
  CaptionsById,
  CiderReferences,
  CiderVector,
  DocumentFrequencies,
  Metric,
  MetricScores,
} from "./pipeline/eval/metrics/mod.ts";

// Self-critical training: the batches of sampled captions, their CIDEr-D reward, the baselines.
export { ScstBatches } from "./pipeline/train/scst.ts";
export type { ScstBatchOptions, ScstStats } from "./pipeline/train/scst.ts";
export { CiderReward, scstBaselines } from "./pipeline/train/scst_reward.ts";
export type { ScstBaseline } from "./pipeline/train/scst_reward.ts";

// Experiments: the files `deno task train` runs.
export {
  defaultExperiment,
  loadExperiment,
  parseOverrides,
  resolveExperiment,
} from "./pipeline/config/config.ts";
export type {
  DataConfig,
  EvaluateConfig,
  ExperimentConfig,
  MetricName,
  ModelConfig as ExperimentModelConfig,
  ScstConfig,
  StageName,
  TrainConfig,
} from "./pipeline/config/config.ts";
export { METRIC_NAMES, STAGE_NAMES } from "./pipeline/config/schema.ts";
export { runExperiment } from "./pipeline/run/run.ts";
export type { RunOptions, RunResult } from "./pipeline/run/run.ts";
export type { EvaluatedCheckpoint } from "./pipeline/run/report_data.ts";

// Errors.
export { InputError } from "./pipeline/errors.ts";
