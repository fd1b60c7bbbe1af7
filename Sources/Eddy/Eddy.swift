// The umbrella module for application authors: `import Eddy` brings in the records, serdes
// and log protocols (EddyCore) and the streams DSL and test driver (EddyStreams). EddyState
// and EddyLog are added here as they land.
@_exported import EddyCore
@_exported import EddyStreams
